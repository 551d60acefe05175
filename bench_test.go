package deer_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/redistest"
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
	return noopRuntime(b, unlimited)
}

// noopRuntime is a runtime of one upstream, "noop", answered by
// noopTransport, with room for many callers; mut adjusts its configuration.
func noopRuntime(b *testing.B, mut func(*conf.Config)) *deer.Runtime {
	cfg := conf.Default()
	cfg.Cache.L3Path = b.TempDir()
	cfg.Monitoring.DetailedLogging = false
	cfg.ConnectionPool.MaxConnections = 1000
	cfg.ConnectionPool.InitialConnections = 0
	cfg.ParallelExecution.MaxWorkers = 64
	cfg.ParallelExecution.QueueSize = 100000
	mut(cfg)
	cfg.Upstreams = map[string]conf.Upstream{"noop": {BaseURL: "http://noop.invalid", Cache: "auto", Timeout: 60}}
	return start(b, cfg, deer.WithRoundTripper(noopTransport{}))
}

// missTask is a call the cache does not serve (a chat without temperature
// samples): what BenchmarkSubmit measured before the cache was on the task
// path, so the numbers compare.
func missTask() *messages.Task {
	return &messages.Task{Upstream: "noop", Method: "POST", Path: "/v1/chat/completions",
		Body: []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`)}
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
			res, err := rt.Submit(ctx, missTask())
			if err != nil || res.Status != messages.TaskSucceeded {
				b.Fatalf("task: %v %+v", err, res)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkSubmitCacheHit is the same with every call answered from L1 at
// admission (a temperature-0 chat stored once).
func BenchmarkSubmitCacheHit(b *testing.B) {
	rt := benchRuntime(b)
	ctx := context.Background()
	hit := func() *messages.Task {
		return &messages.Task{Upstream: "noop", Method: "POST", Path: "/v1/chat/completions",
			Body: []byte(`{"model":"m","temperature":0,"messages":[{"role":"user","content":"x"}]}`)}
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		res, err := rt.Submit(ctx, hit())
		if err == nil && res.Cache == messages.CacheHitL1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the entry never reached L1: %v %+v", err, res)
		}
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := rt.Submit(ctx, hit())
			if err != nil || res.Cache != messages.CacheHitL1 {
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
		res, err := rt.Submit(ctx, missTask())
		if err != nil || res.Status != messages.TaskSucceeded {
			b.Fatalf("task: %v %+v", err, res)
		}
	}
}

// BenchmarkClusterAB is added latency and throughput with and without
// cluster.redis_url, in the same run against a real redis-server: the
// limiter on (1,000,000 req/s), so that a cluster node leases its tokens
// from Redis in slices while the single node takes them from its bucket.
// Issue 13's goal: no difference beyond noise.
//
//	go test -run '^$' -bench ClusterAB -count 5 .
func BenchmarkClusterAB(b *testing.B) {
	srv := redistest.Start(b)
	for _, mode := range []string{"single", "cluster"} {
		runtime := func(b *testing.B) *deer.Runtime {
			return noopRuntime(b, func(cfg *conf.Config) {
				// The limiter on, far above what the machine reaches, so
				// that neither mode is held by the rate.
				cfg.RateLimit.InitialRate, cfg.RateLimit.MaxRate, cfg.RateLimit.BurstAllowance = 1e6, 1e6, 1e6
				if mode == "cluster" {
					cfg.Cluster.RedisURL = srv.URL()
				}
			})
		}
		b.Run(mode+"/sequential", func(b *testing.B) {
			rt := runtime(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if res, err := rt.Submit(ctx, missTask()); err != nil || res.Status != messages.TaskSucceeded {
					b.Fatalf("task: %v %+v", err, res)
				}
			}
		})
		b.Run(mode+"/parallel", func(b *testing.B) {
			rt := runtime(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if res, err := rt.Submit(ctx, missTask()); err != nil || res.Status != messages.TaskSucceeded {
						b.Fatalf("task: %v %+v", err, res)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
