// Package fanout shares one upstream stream with many readers: it is how
// identical streamed LLM calls in flight at once make one upstream call
// (SPEC §5, Collaboration).
//
// A Stream pumps its source on one goroutine into a growing buffer, as fast
// as the source delivers; readers never slow the upstream. Every reader
// starts at the first byte, so a caller that joins late first gets what was
// already sent, then the rest as it arrives. Each Read returns at most one
// source chunk, so an SSE relay that flushes after every Read relays the
// stream chunk by chunk, as the upstream sent it. When the source ends, the
// whole stream (bytes and chunk lengths) is handed to a done callback so that
// it can be cached and replayed byte for byte.
//
// Concurrency: every method of Stream and of its readers may be called from
// any goroutine. A single reader is meant for one consumer; concurrent Reads
// on the same reader are safe but split the stream between them.
package fanout
