// Package chaos is the engine of deerchaos (`make chaos`): a fault drill
// that drives a running deerd at a steady open-loop rate while it injects
// faults into every actor kind through deerd's /faults API and into the
// upstream through deersim's /_control, and accounts for every request.
//
// # The load
//
// Requests go out on internal/load's open-loop schedule (OpenLoop): request
// i is due at i/rate whatever happened to the earlier ones. The mix (Mix)
// is chat completions, streamed chat completions, embeddings, async
// /v1/tasks (POST, then GET /v1/tasks/{id} until the task is terminal) and
// cache hits (temperature-0 chats repeating a few prompts). Every request
// carries a client id: the header X-Request-Id and a nonce
// "chaos-RUN-N" in its prompt or embedding input. deersim's chat answer
// quotes the prompt and its embedding is a function of the input
// (sim.Vector), so the drill can tell whose answer an answer is.
//
// # The accounting
//
// The Ledger holds one entry per request:
//
//   - answered: its caller got an HTTP answer (for an async task: the
//     task's terminal state); an answer that is not the request's own (it
//     names another request) is answered but failed, "wrong_answer".
//   - succeeded: a 2xx answer whose content is the request's own (a
//     stream: every chunk up to [DONE]; a task: status "succeeded").
//   - failed: answered otherwise, by HTTP status and error code.
//   - lost: sent and never answered by the end of the schedule plus the
//     grace period, or whose connection ended without an HTTP answer, or an
//     async task deerd stopped knowing before it finished. Must be 0.
//   - duplicates: a second answer for one request: an answer naming a
//     request that its own answer had already named, one deer task id
//     given to two requests, or an async task whose terminal result
//     changed between two reads. Must be 0.
//
// # The phases
//
// Plan.Phases lays out the drill: a baseline without faults; a panic phase
// per actor kind (router, worker/*, pool/sim, limiter/sim, breaker/sim/*,
// batch/sim, cache/l1, cache/l2, cache/l3, metrics, http); delay phases and
// drop phases; a recovery phase; upstream 5xx bursts, connection resets and
// hangs through deersim; and a cool-down. An actor phase injects its faults
// at its start and removes them after 60% of its slot, then times how long
// /health takes to say "healthy". Each phase reports what was sent in it
// and what became of it, the upstream calls deersim counted during it,
// restarts per actor and escalations (GET /faults), and deerd's peak RSS
// (/proc, reset at the phase's start).
//
// Run drives a deerd and a deersim that are already running (the binaries,
// or deer.Start with httpapi in a test); StartProcesses starts the built
// binaries for deerchaos. Results.Markdown and Results.TimelineSVG render the
// generated section of docs/chaos.md and its SVG timeline.
package chaos
