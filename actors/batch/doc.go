// Package batch is batch/UPSTREAM: it micro-batches embedding calls of one
// model and options into combined upstream calls of up to batch_size inputs
// (SPEC §5). A batch goes when it is full, when batch_timeout has passed since
// its first item, at once for a high-priority item, and — with adaptive
// sizing — as soon as it holds what the observed arrival rate will bring in
// before the timeout.
package batch
