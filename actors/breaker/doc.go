// Package breaker is breaker/UPSTREAM/ENDPOINT: a circuit breaker per
// upstream endpoint (SPEC §5).
//
// closed → open after circuit_breaker_threshold consecutive failures (a 429
// is neutral: neither a failure nor a success; a success resets the count);
// open fails fast; once circuit_breaker_timeout (or a longer Retry-After
// that came with the opening failure) has passed, it is half_open and lets
// exactly one probe through; the probe's success closes it, its failure
// reopens it for another timeout. A probe whose caller never reports does
// not wedge it: circuit_breaker_timeout after the probe went out, another
// may go. Every change starts a new generation, and results of calls that
// went out in an earlier one are ignored.
//
// Breaker is the core (time passed in, no goroutines); Actor is its shell.
// Workers do not ask the actor about every call: each actor publishes its
// state on a Board, which workers read lock-free (Board.Pick, Board.Route,
// Board.Candidates for several endpoints),
// and they send CheckBreaker only to be granted a probe.
package breaker
