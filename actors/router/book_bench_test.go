package router

import (
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// BenchmarkBookTask is the router core's share of one task that misses the
// cache: admission, dispatch and finish, with the effects it returns; with
// 64 workers and with 512 (make bench's deerd), all but one of them busy.
func BenchmarkBookTask(b *testing.B) {
	for _, workers := range []int{64, 512} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchBookTask(b, workers) })
	}
}

func benchBookTask(b *testing.B, workers int) {
	cfg := conf.Default()
	cfg.Upstreams = map[string]conf.Upstream{"up": conf.NewUpstream("http://up")}
	cfg.ParallelExecution.MaxWorkers = workers
	cfg.ParallelExecution.QueueSize = workers
	n := 0
	book := NewBook(cfg, Env{NewID: func() string { n++; return fmt.Sprint("t", n) }})
	for _, s := range book.workers.grow(workers) {
		book.workers.setPID(s, actor.NewPID("local", s.name))
	}
	caller := actor.NewPID("local", "caller")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	submit := func(id string) *slot {
		t := &messages.Task{ID: id, Upstream: "up", Method: "POST", Path: "/v1/chat/completions", Body: body}
		for _, e := range book.Submit(now, &messages.SubmitTask{Task: t}, caller) {
			if r, ok := e.(Run); ok {
				return r.Worker
			}
		}
		return nil
	}
	// Keep all workers but one busy with tasks that never finish, as under
	// load: a dispatch then has one free worker to find among them all.
	for i := range workers - 1 {
		submit(fmt.Sprint("long", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		s := submit("task")
		book.Finished(now, &worker.Finished{ID: "task", Result: &messages.TaskResult{Status: messages.TaskSucceeded, UpstreamStatus: 200}, Idle: true}, s)
	}
}
