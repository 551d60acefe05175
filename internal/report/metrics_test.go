package report

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

func withStats(name string, stats any) Answer {
	a := answerIn(name, Healthy)
	a.Stats = &messages.StatsReport{Actor: name, Stats: stats}
	return a
}

func TestMetricsSumsTheAnswers(t *testing.T) {
	silent := answerIn("pool/c", Healthy)
	silent.Stats = nil // answered status, not stats
	answers := []Answer{
		withStats("router", &messages.RouterStats{Workers: 2, ActiveTasks: 1, Queued: 3, QueueCapacity: 50, PriorityLevels: 3, LoadBalancing: true, Replaced: 4,
			Outcomes: map[string]uint64{"succeeded": 7, "upstream_error": 2}, Latency: messages.LatencyStats{Window: 10, Count: 9, P50: 0.01, P99: 0.2}}),
		answerIn("worker/1", Healthy),
		answerIn("worker/2", NotResponding), // workers are left out of unanswered
		withStats("pool/a", &messages.PoolStats{Upstream: "a", ActiveConnections: 3, MaxConnections: 10, TotalAcquired: 7, TotalReleased: 4, PeakUsage: 5}),
		withStats("pool/b", &messages.PoolStats{Upstream: "b", ActiveConnections: 1, MaxConnections: 30, TotalAcquired: 2, TotalReleased: 1, PeakUsage: 2, Snapshot: true}),
		silent,
		withStats("limiter/a", &messages.LimiterStats{Upstream: "a", CurrentRate: 10}),
		withStats("limiter/b", &messages.LimiterStats{Upstream: "b", CurrentRate: 30}),
		withStats("cache/l1", &messages.CacheTierStats{Tier: "l1", Hits: 5, Entries: 2}),
		withStats("cache/l2", &messages.CacheTierStats{Tier: "l2", Hits: 3, Entries: 4}),
		withStats("cache/l3", &messages.CacheTierStats{Tier: "l3", Hits: 2, Misses: 10, Entries: 6}),
		withStats("breaker/a", &messages.BreakerStats{Upstream: "a", State: "half_open"}),
		withStats("breaker/b/1", &messages.BreakerStats{Upstream: "b", State: "open"}),
		withStats("breaker/b/2", &messages.BreakerStats{Upstream: "b", State: "closed"}),
		withStats("batch/a", &messages.BatchStats{Upstream: "a", Pending: 2, BatchesSent: 3, ItemsSent: 9, Rejected: 1}),
		withStats("batch/b", &messages.BatchStats{Upstream: "b", Pending: 1, BatchesSent: 1, ItemsSent: 1}),
		withStats("http", &messages.HTTPStats{Requests: 12}),
		withStats("metrics", &messages.MetricsStats{Snapshots: 2}),
		{Entry: supervisor.Entry{Name: "crasher", State: supervisor.Restarting, Restarts: 2}},
	}
	in := input(true, answers)
	m := Metrics(in, SystemInfo{GoVersion: "go1.26", Platform: "linux"})

	if m.Timestamp != float64(in.Now.Unix()) || m.SystemInfo.UptimeSeconds != 60 || m.SystemInfo.GoVersion != "go1.26" {
		t.Errorf("timestamp %v, system_info %+v", m.Timestamp, m.SystemInfo)
	}
	if m.RequestQueue != (QueueSummary{Size: 3, MaxSize: 50}) {
		t.Errorf("request_queue %+v", m.RequestQueue)
	}
	pe := m.AdvancedOptimizations.ParallelExecutor
	if pe.Workers != 2 || pe.ActiveTasks != 1 || pe.Queued != 3 || pe.PriorityLevels != 3 || !pe.LoadBalancing || pe.WorkersReplaced != 4 {
		t.Errorf("parallel_executor %+v", pe)
	}
	p := m.ConnectionPool
	if p.ActiveConnections != 4 || p.MaxConnections != 40 || p.Utilization != 0.1 || p.TotalAcquired != 9 ||
		p.TotalReleased != 5 || p.PeakUsage != 7 || len(p.Upstreams) != 2 || !p.Upstreams["b"].Snapshot {
		t.Errorf("connection_pool %+v", p)
	}
	// max_connections is the sum of the pools; each pool's own is under
	// its upstream.
	if a, b := p.Upstreams["a"], p.Upstreams["b"]; a == nil || b == nil || a.MaxConnections != 10 || b.MaxConnections != 30 {
		t.Errorf("upstreams' max_connections %+v; want a: 10, b: 30", p.Upstreams)
	}
	if rl := m.AdvancedOptimizations.RateLimiter; rl.CurrentRate != 20 || len(rl.Upstreams) != 2 {
		t.Errorf("rate_limiter: current_rate %v (want the mean, 20), %d upstreams", rl.CurrentRate, len(rl.Upstreams))
	}
	want := CacheStats{L1Hits: 5, L2Hits: 3, L3Hits: 2, Misses: 10, HitRate: 0.5, L1Entries: 2, L2Entries: 4, L3Entries: 6}
	if cs := m.AdvancedOptimizations.MemoryManager.CacheStats; cs != want {
		t.Errorf("cache_stats %+v, want %+v", cs, want)
	}
	if er := m.AdvancedOptimizations.ErrorRecovery; er.CircuitBreakerState != "open" || len(er.Breakers) != 3 || er.Breakers["breaker/b/1"] == nil {
		t.Errorf("error_recovery: state %q (want the worst, open), breakers %v", er.CircuitBreakerState, slices.Sorted(maps.Keys(er.Breakers)))
	}
	if b := m.BatchProcessor; b.Pending != 3 || b.BatchesSent != 4 || b.ItemsSent != 10 || b.CallsSaved != 6 || b.Rejected != 1 || len(b.Upstreams) != 2 {
		t.Errorf("batch_processor %+v (calls_saved: 9-3 of a, 1-1 of b)", b)
	}
	if tk := m.Tasks; tk.Total != 9 || len(tk.ByOutcome) != 2 || tk.ByOutcome["upstream_error"] != 2 || tk.Latency.P99 != 0.2 || tk.Latency.Count != 9 {
		t.Errorf("tasks %+v", tk)
	}
	if m.HTTP == nil || m.HTTP.Requests != 12 || m.Export == nil || m.Export.Snapshots != 2 {
		t.Errorf("http %+v, metrics_export %+v", m.HTTP, m.Export)
	}
	if a := m.Actors; a.Total != len(answers) || a.Restarts["crasher"] != 2 || !slices.Equal(a.Unanswered, []string{"crasher", "pool/c"}) {
		t.Errorf("actors %+v", a)
	}
	// The crasher is no advanced component's; a silent worker is capacity.
	for k, st := range map[string]string{
		"parallel_executor": pe.Status,
		"rate_limiter":      m.AdvancedOptimizations.RateLimiter.Status,
		"memory_manager":    m.AdvancedOptimizations.MemoryManager.Status,
		"error_recovery":    m.AdvancedOptimizations.ErrorRecovery.Status,
	} {
		if st != Active {
			t.Errorf("%s status %q, want active", k, st)
		}
	}
}

// TestMetricsWithNothingAnswered: the document keeps its shape (empty maps
// and lists, not null) when no actor answers.
func TestMetricsWithNothingAnswered(t *testing.T) {
	m := Metrics(input(true, nil), SystemInfo{})
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range [][]string{
		{"connection_pool", "upstreams"},
		{"advanced_optimizations", "rate_limiter", "upstreams"},
		{"advanced_optimizations", "memory_manager", "tiers"},
		{"advanced_optimizations", "error_recovery", "breakers"},
		{"batch_processor", "upstreams"},
		{"actors", "restarts"},
		{"actors", "unanswered"},
	} {
		if at(doc, path...) == nil {
			t.Errorf("%v is null", path)
		}
	}
	if got := at(doc, "advanced_optimizations", "error_recovery", "circuit_breaker_state"); got != "closed" {
		t.Errorf("circuit_breaker_state = %v, want closed", got)
	}
	if _, ok := doc["http"]; ok {
		t.Error("http is present without an http actor")
	}
}

func at(doc map[string]any, path ...string) any {
	var v any = doc
	for _, k := range path {
		v = v.(map[string]any)[k]
	}
	return v
}
