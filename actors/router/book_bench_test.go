package router

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// BenchmarkBookTask is the router core's share of one task that misses the
// cache: admission, dispatch and finish, with the effects it returns.
func BenchmarkBookTask(b *testing.B) {
	cfg := conf.Default()
	cfg.Upstreams = map[string]conf.Upstream{"up": conf.NewUpstream("http://up")}
	cfg.ParallelExecution.MaxWorkers = 64
	n := 0
	book := NewBook(cfg, Env{NewID: func() string { n++; return "t" + string(rune(n)) }})
	for _, s := range book.workers.grow(64) {
		book.workers.setPID(s, actor.NewPID("local", s.name))
	}
	caller := actor.NewPID("local", "caller")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		t := &messages.Task{ID: "task", Upstream: "up", Method: "POST", Path: "/v1/chat/completions", Body: body}
		fx := book.Submit(now, &messages.SubmitTask{Task: t}, caller)
		var s *slot
		for _, e := range fx {
			if r, ok := e.(Run); ok {
				s = r.Worker
			}
		}
		book.Finished(now, &worker.Finished{ID: "task", Result: &messages.TaskResult{Status: messages.TaskSucceeded, UpstreamStatus: 200}, Idle: true}, s)
	}
}
