package deer_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// noopTransport answers every call at once from memory: the benchmark then
// measures deer's own path (admission, queue, dispatch, lease, answer).
type noopTransport struct{}

func (noopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{}`)), Request: r,
	}, nil
}

func benchRuntime(b *testing.B) *deer.Runtime {
	cfg := conf.Default()
	cfg.Cache.L3Path = b.TempDir()
	cfg.Monitoring.DetailedLogging = false
	cfg.ConnectionPool.MaxConnections = 1000
	cfg.ConnectionPool.InitialConnections = 0
	cfg.ParallelExecution.MaxWorkers = 64
	cfg.ParallelExecution.QueueSize = 100000
	unlimited(cfg)
	cfg.Upstreams = map[string]conf.Upstream{"noop": {BaseURL: "http://noop.invalid", Cache: "auto", Timeout: 60}}
	return start(b, cfg, deer.WithRoundTripper(noopTransport{}))
}

// BenchmarkSubmit is in-process throughput: many callers submitting at once
// through the whole task path to a no-op upstream.
func BenchmarkSubmit(b *testing.B) {
	rt := benchRuntime(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(32) // 32 × GOMAXPROCS callers keep the workers busy
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := rt.Submit(ctx, &messages.Task{Upstream: "noop", Method: "POST", Path: "/v1/embeddings", Body: []byte(`{"input":"x"}`)})
			if err != nil || res.Status != messages.TaskSucceeded {
				b.Fatalf("task: %v %+v", err, res)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkSubmitSequential is one caller's round trip through deer.
func BenchmarkSubmitSequential(b *testing.B) {
	rt := benchRuntime(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := rt.Submit(ctx, &messages.Task{Upstream: "noop", Method: "POST", Path: "/v1/embeddings", Body: []byte(`{"input":"x"}`)})
		if err != nil || res.Status != messages.TaskSucceeded {
			b.Fatalf("task: %v %+v", err, res)
		}
	}
}
