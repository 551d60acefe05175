// Package router is the WorkerRouter (SPEC §6 "router").
//
// Book (book.go, book_batch.go) is its functional core: every accepted
// task, the priority queue, which worker runs what, coalesced flights of
// identical calls, embedding batches run as one combined task, cache
// lookups, idempotency, async results and the drain. Its methods take the
// time and a message and return Effects (book_effects.go); it sends
// nothing and reads no clock. router.go is the shell: it feeds the book
// messages, performs the effects, and owns the worker actors (package
// worker): spawning max_workers of them, growing and shrinking the set
// live, pinging idle ones every health_check_interval and replacing those
// that do not answer.
//
// testdata/*.txt are scenario scripts for the book in the style of
// etcd-io/raft's interaction tests (scenario_test.go); regenerate their
// expected output with `go test ./actors/router -run TestScenarios -rewrite`.
package router
