package messages

import "github.com/asynkron/protoactor-go/actor"

// EnqueueBatchItem adds one embedding call to batch/UPSTREAM. Reply:
// *BatchAccepted or *BatchRejected, to ReplyTo when set, else to the sender.
type EnqueueBatchItem struct {
	ID       uint64 // caller's correlation id
	Model    string
	Options  string // canonical key of the other request options; items batch only with equal Model and Options
	Inputs   int    // number of inputs this item carries (≥ 1)
	Priority int    // 0 is most urgent; with priority_enabled it flushes its batch at once
	Payload  []byte // the item's inputs as sent by the caller, carried opaque into BatchReady
	ReplyTo  *actor.PID
}

// BatchAccepted answers EnqueueBatchItem: the item waits for its batch.
type BatchAccepted struct {
	ID uint64
}

// BatchRejected answers EnqueueBatchItem: the item was not queued.
type BatchRejected struct {
	ID     uint64
	Reason string // "queue_full", "disabled", "invalid"
}

// BatchItem is one queued item inside a BatchReady.
type BatchItem struct {
	ID       uint64
	Inputs   int
	Priority int
	Payload  []byte
	ReplyTo  *actor.PID
}

// BatchReady is a flushed batch: items of one model and options whose inputs
// together go upstream as one combined call.
type BatchReady struct {
	Upstream string
	Model    string
	Options  string
	Inputs   int
	Items    []*BatchItem
	Reason   string // size, timeout, priority, adaptive, config, shutdown
}
