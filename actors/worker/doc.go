// Package worker is worker/N: it executes one task at a time for the router,
// its parent, so parallel_execution.max_workers of them bound the
// concurrency (a bulkhead).
//
// The router sends Run; the worker hands the call to its executor goroutine
// and keeps answering health checks and Cancel while the upstream is slow.
// The call reports Finished to the router, and Idle once a streamed body is
// closed. One attempt goes through a stage per file:
//
//	token.go   a limiter token: from the reservoir, or AcquireToken
//	route.go   the endpoints the breaker board lets the call through to
//	lease.go   a connection: from the pool's lane, or AcquireConnection
//	send.go    the HTTP request and its answer
//	report.go  the outcome, fire-and-forget, to the limiter and the breaker
//
// call.go runs the attempts with retries and classifies failures;
// stream.go frees the connection and the worker when a stream is closed.
package worker
