package deer_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

// BenchmarkGoodputAgainstCapacity offers 200 tasks/s, open loop, to a
// simulated upstream that accepts 50 req/s and answers 429 with
// Retry-After: 1 above that, for 60 s (10 s with -short), with the default
// rate_limit and error_recovery settings; callers give up at the end of the
// window. It reports the goodput (tasks/s that succeeded), the share of
// upstream answers that were 429, and the limiter's rate at the end. b.N is not used: one run is the measurement
// (use -benchtime=1x).
func BenchmarkGoodputAgainstCapacity(b *testing.B) {
	duration := 60 * time.Second
	if testing.Short() {
		duration = 10 * time.Second
	}
	s := sim.New(sim.Knobs{Capacity: 50, RetryAfter: 1, StreamChunks: 1})
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()
	cfg := resilienceConfig(b, srv.URL)
	cfg.RateLimit = testConfig(b).RateLimit // the built-in defaults: 10 req/s to start, max 100
	cfg.ParallelExecution.QueueSize = 100000
	cfg.ParallelExecution.WorkerTimeout = 120
	rt := start(b, cfg)

	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(5 * time.Millisecond) // 200/s
	defer tick.Stop()
	b.ResetTimer()
	end := time.Now().Add(duration)
	// Callers give up at the end of the window: four times the capacity is
	// offered, so most tasks are still queued then; they are cancelled.
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	for now := range tick.C {
		if now.After(end) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := rt.Submit(ctx, &messages.Task{Upstream: "up", Method: "POST", Path: "/search", Body: []byte(`{"query":"q"}`)})
			if err == nil && res.Status == messages.TaskSucceeded {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	window := ok.Load()
	st := s.Stats()
	b.StopTimer()
	var answers int64
	for _, n := range st.Statuses {
		answers += n
	}
	m := rt.Metrics(context.Background())
	b.ReportMetric(float64(window)/duration.Seconds(), "goodput/s")
	b.ReportMetric(100*float64(st.Statuses[429])/float64(max(answers, 1)), "429_%")
	b.ReportMetric(m.AdvancedOptimizations.RateLimiter.CurrentRate, "final_rate")
	b.ReportMetric(float64(ok.Load()), "succeeded")
	b.ReportMetric(float64(failed.Load()), "failed")
}
