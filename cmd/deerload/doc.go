// Command deerload is an open-loop load generator for deerd and anything
// else that speaks HTTP: OpenAI chat completions, embeddings, /v1/tasks.
//
// Usage:
//
//	deerload rate --url URL [--method POST] [--body STRING|@file] [--header 'K: V']...
//	              --rate 200 --duration 15s [--max-inflight 10000] [--timeout 30s] [--json]
//	deerload rounds --url A --url B [...] [--method POST] [--body STRING|@file] [--header 'K: V']...
//	              [--rounds 7] [--per-round 25] [--warmup 15] [--timeout 30s] [--json]
//
// rate sends rate requests per second for duration on a fixed schedule,
// whether or not earlier requests have answered (open loop: a slow target
// cannot slow the schedule and hide its slowness). Latency is measured from
// each request's scheduled send time to the end of its body, into an HDR
// histogram (1 µs .. 60 s, 3 significant digits). When --max-inflight
// requests are outstanding, a request due is dropped by the generator and
// reported as such, never delayed.
//
// rounds calls the URLs one after the other, one request at a time (A, B,
// A, B, …): --warmup unrecorded iterations, then --rounds rounds of
// --per-round iterations. For every URL after the first it reports the
// latency added over the first: the median over rounds of the difference of
// round medians, with its interquartile range (as `make bench` does for
// deerd against direct calls). Any failed request ends the run.
//
// --body sends the string, or with @path the file's content; with a body
// the method defaults to POST (else GET) and Content-Type to
// application/json. --header may be repeated.
//
// Output: a summary on stdout, or with --json the result as JSON (shape in
// the documentation of package internal/load). A progress bar is drawn on
// stderr when stderr is a terminal and --json is not set. Exit status: 0 on
// a completed run, 1 when the run fails, 2 for bad flags.
//
// Example, against a local deersim:
//
//	deerload rate --url http://127.0.0.1:9090/v1/chat/completions \
//	    --body '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}' \
//	    --rate 200 --duration 15s
package main
