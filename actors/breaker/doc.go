// Package breaker is breaker/UPSTREAM/ENDPOINT: a circuit breaker per
// upstream endpoint (SPEC §5).
//
// closed → open when, within the rolling failure_window, at least
// circuit_breaker_threshold calls failed and they are at least
// failure_rate_threshold of the window's calls (a 429 is neutral: neither a
// failure nor a call); so an endpoint failing every call opens after
// threshold calls, and scattered failures below the rate never open it.
// The window is ten fixed buckets of a tenth of failure_window each. Open
// fails fast; once circuit_breaker_timeout (or a longer Retry-After that
// came with the opening failure) has passed, it is half_open and lets
// exactly one probe through; the probe's success closes it (with an empty
// window), its failure reopens it for another timeout. A probe whose caller
// never reports does not wedge it: circuit_breaker_timeout after the probe
// went out, another may go. Every change starts a new generation, and
// results of calls that went out in an earlier one are ignored.
//
// Breaker is the core (time passed in, no goroutines); Actor is its shell.
// Workers do not ask the actor about every call: each actor publishes its
// state on a Board, which workers read lock-free (Board.Pick, Board.Route,
// Board.Candidates for several endpoints),
// and they send CheckBreaker only to be granted a probe. Nor do they report
// every success: one that would change nothing but the count of calls
// (Board.Quiet) is counted on the board instead, and the actor reads that
// count before each result it records (Breaker.CountQuiet spreads it over
// the time since it last read it).
package breaker
