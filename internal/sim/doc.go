// Package sim is deersim's simulated upstream: an OpenAI-compatible API
// (chat completions, JSON and SSE streaming; embeddings; models) and a
// web-search endpoint, with knobs that inject latency and faults. The deersim
// command serves it, and deerd serves it itself on the address of an upstream
// configured with builtin = true.
//
// # Endpoints
//
//	POST /v1/chat/completions   chat.completion, or SSE chat.completion.chunk events with "stream": true
//	POST /v1/embeddings         one deterministic unit vector per input, float or base64
//	GET  /v1/models             the configured model list
//	POST /search                {"query", "max_results" or "num_results"}: deterministic results
//	GET  /search?q=…            the same
//	GET  /_control              the current knobs
//	POST /_control              change knobs live (partial JSON; all or nothing)
//	GET  /_stats                counts per path and status, embedding input counts,
//	                            retries after 429 and whether they waited Retry-After
//	POST /_stats/reset          zero the counts
//
// # Fault injection
//
// Knobs apply to the API paths above, not to /_control and /_stats; an
// unknown path (404) or method (405) is answered before them. Each request
// goes through these steps in order; the first that fires decides the
// outcome, and each rate is an independent draw from a source seeded by
// WithSeed:
//
//  1. hang_rate: the request hangs until the client gives up (or the
//     simulator closes, which drops the connection).
//  2. reset_rate: the TCP connection is reset (RST, so the client sees
//     ECONNRESET); HTTP/1 only, other protocols get an aborted response.
//  3. capacity: above capacity admitted requests per second (a token bucket
//     with a burst of one second's worth), 429 with Retry-After.
//  4. error_rate: 500 in OpenAI error shape.
//  5. latency: sleep, ending early if the client goes away.
//  6. the answer; streams wait stream_interval between chunks.
//
// Faults and latency come before the body is parsed, as with a real
// overloaded upstream, so a malformed request may still be answered 429.
//
// # Per-request overrides
//
// Tests can steer one request with headers, which replace the knobs for it:
//
//	X-Sim-Fault: hang | reset | none    force a fault, or rule out hang and reset
//	X-Sim-Status: 503                   skip capacity and error_rate; after the latency, answer
//	                                    that status in OpenAI error shape (2xx: answer normally)
//	X-Sim-Latency: 50ms                 use this latency
//
// A malformed override header is answered 400.
//
// # Shutdown
//
// Close (called by the shutdown of a server made with Server) releases hung
// requests by dropping their connections, and cuts latency and stream
// intervals short so that in-flight answers complete at once.
package sim
