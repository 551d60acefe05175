// Package load is the engine of deerload: an open-loop generator at a
// constant rate, sequential rounds for added latency, and the results both
// produce, in a JSON shape meant for scripts.
//
// # Open loop
//
// Constant sends request i at start + i/rate whether or not earlier requests
// have answered, each in its own goroutine, so a slow target cannot slow the
// schedule down and hide its slowness (no coordinated omission). Latency is
// measured from the scheduled send time, not from when the request actually
// left, until the response body has been read. A cap on requests in flight
// (Options.MaxInFlight) protects the generator: when it is reached, the
// request due is not sent and is counted as dropped by the generator; the
// schedule is never delayed. OpenLoop is that schedule alone, for callers
// that make requests of their own (make chaos sends each with its own id
// and checks each answer).
//
// # Result JSON (constant rate)
//
//	{
//	  "method": "POST", "url": "http://…/v1/chat/completions",
//	  "rate": 200,                 // requested requests per second
//	  "duration_s": 15,            // requested duration of the schedule
//	  "max_inflight": 10000,
//	  "scheduled": 3000,           // ceil(rate × duration) requests planned, due at i/rate
//	  "sent": 3000,                // sent (scheduled − dropped, unless interrupted)
//	  "dropped": 0,                // dropped by the generator: in-flight cap reached
//	  "interrupted": false,        // the context ended before the schedule did
//	  "achieved_rate": 199.98,     // sent per second over the send window
//	  "send_s": 15.0,              // schedule start to the last request due, plus one interval
//	  "elapsed_s": 15.04,          // schedule start to the last answer or error
//	  "max_send_lag_us": 310,      // worst lateness of a send behind its schedule
//	  "success_pct": 100,          // 2xx answers / scheduled × 100 (drops and errors count as failures)
//	  "status": {"200": 3000},     // answers by HTTP status code
//	  "errors": {"timeout": 2},    // requests without an answer, by kind:
//	                               //   timeout, canceled, reset, refused, eof, other
//	  "latency_us": {              // over all answers (any status), from the scheduled send time;
//	    "count": 3000,             // HDR histogram, 1 µs .. 60 s, 3 significant digits
//	    "p50": 812, "p90": 1203, "p99": 2311, "p99_9": 4015, "max": 5120, "mean": 850.2
//	  }
//	}
//
// # Rounds
//
// Rounds calls the targets one after the other (A, B, A, B, …), one request
// at a time, as BenchmarkAddedLatency in httpapi does: after a warm-up, every
// perRound iterations form a round; each round gives the median latency of
// each target, and for each target after the first the difference of its
// round median from the first target's. The reported added latency is the
// median of those round differences with their interquartile range. Any
// request that fails (transport error or non-2xx) ends the run with an error:
// latencies of failures would make the comparison meaningless. JSON:
//
//	{
//	  "rounds": 7, "per_round": 25, "warmup": 15, "elapsed_s": 1.2,
//	  "targets": [{"method": "POST", "url": "…", "round_medians_us": […],
//	               "p50_us": 101.2, "p99_us": 180.3}, …],
//	  "diffs": [{"url": "…", "base_url": "…", "round_medians_us": […],
//	             "median_us": 52.1, "iqr_us": 3.4}, …]
//	}
//
// Quantiles in rounds are nearest-rank over the raw samples (there are few);
// all latencies are in microseconds.
package load
