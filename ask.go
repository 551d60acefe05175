package deer

import (
	"context"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/report"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// The /health and /metrics documents. Package internal/report builds them
// from the actors' answers; the runtime asks.
type (
	HealthReport          = report.HealthReport
	HealthConfiguration   = report.HealthConfiguration
	ActorHealth           = report.ActorHealth
	MetricsReport         = report.MetricsReport
	PoolSummary           = report.PoolSummary
	QueueSummary          = report.QueueSummary
	AdvancedOptimizations = report.AdvancedOptimizations
	ParallelExecutor      = report.ParallelExecutor
	RateLimiter           = report.RateLimiter
	MemoryManager         = report.MemoryManager
	CacheStats            = report.CacheStats
	ErrorRecovery         = report.ErrorRecovery
	BatchSummary          = report.BatchSummary
	ActorsSummary         = report.ActorsSummary
	SystemInfo            = report.SystemInfo
)

// askTimeout bounds how long /health and /metrics wait for one actor: an
// actor that does not answer in time is reported, not waited on.
const askTimeout = 500 * time.Millisecond

// Health asks every actor how it is and builds the /health document.
func (rt *Runtime) Health(ctx context.Context) *HealthReport {
	rep := report.Health(rt.reportInput(ctx, false))
	if rt.members != nil {
		rep.Cluster = rt.members.Health(rt.clock.Now())
	}
	return rep
}

// Metrics asks every actor for its numbers and its state, both questions at
// once, and builds the /metrics document.
func (rt *Runtime) Metrics(ctx context.Context) *MetricsReport {
	in := rt.reportInput(ctx, true)
	rep := report.Metrics(in, report.Process())
	if rt.members != nil {
		cm := clusterMetrics(rt.members.Health(rt.clock.Now()), in)
		cm.Breakers = rt.breakers.Counts()
		rep.Cluster = cm
	}
	return rep
}

// ClusterMetrics is /metrics' cluster object: the membership and, per
// upstream, this node's side of the shared budget, and the breaker
// changes it sent to and heard from the other nodes.
type ClusterMetrics struct {
	cluster.Health
	Limiters map[string]*messages.LimiterCluster `json:"limiters"`
	Breakers cluster.BreakerCounts               `json:"breakers"`
}

func clusterMetrics(h cluster.Health, in report.Input) ClusterMetrics {
	m := ClusterMetrics{Health: h, Limiters: map[string]*messages.LimiterCluster{}}
	for _, a := range in.Answers {
		if a.Stats == nil {
			continue
		}
		if s, ok := a.Stats.Stats.(*messages.LimiterStats); ok && s.Cluster != nil {
			m.Limiters[s.Upstream] = s.Cluster
		}
	}
	return m
}

// Ready reports whether every actor outside the worker pool answers.
func (rt *Runtime) Ready(ctx context.Context) (bool, string) {
	if rt.stopping.Load() {
		return false, "shutting down"
	}
	for _, a := range rt.askWithin(ctx, askTimeout, &messages.Ping{}) {
		if a.replies[0] == nil && !strings.HasPrefix(a.entry.Name, "worker/") {
			return false, a.entry.Name + " is " + report.ActorState(report.Answer{Entry: a.entry}).State
		}
	}
	return true, ""
}

// reportInput asks every actor StatusQuery, and with stats StatsQuery too,
// and gathers what a report is made from.
func (rt *Runtime) reportInput(ctx context.Context, stats bool) report.Input {
	cfg := rt.live.Load()
	qs := []any{&messages.StatusQuery{}}
	if stats {
		qs = append(qs, &messages.StatsQuery{})
	}
	asked := rt.askWithin(ctx, askTimeout, qs...)
	in := report.Input{Config: cfg, Now: rt.clock.Now(), Started: rt.started, Answers: make([]report.Answer, len(asked))}
	for i, a := range asked {
		ans := &in.Answers[i]
		ans.Entry = a.entry
		ans.Status, _ = a.replies[0].(*messages.StatusReport)
		if !stats {
			continue
		}
		ans.Stats, _ = a.replies[1].(*messages.StatsReport)
		if up, isPool := strings.CutPrefix(a.entry.Name, "pool/"); isPool && ans.Stats == nil {
			// A pool too busy to answer (its mailbox full of lease
			// requests) has published its recent numbers.
			if snap := rt.poolStats[up].Load(); snap != nil {
				ans.Stats = &messages.StatsReport{Actor: a.entry.Name, Stats: snap}
			}
		}
	}
	return in
}

// asked is one actor's replies to the questions asked at once: replies[i]
// answers the i-th, nil when none came in time.
type asked struct {
	entry   supervisor.Entry
	replies []any
}

// askWithin sends every query in qs to every registered running actor at
// once and collects the replies, waiting at most limit (or less, if ctx
// ends first).
func (rt *Runtime) askWithin(ctx context.Context, limit time.Duration, qs ...any) []asked {
	entries := rt.reg.Entries()
	timeout := limit
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	futures := make([][]*actor.Future, len(entries))
	for i, e := range entries {
		if e.State == supervisor.Running && e.PID != nil && timeout > 0 {
			futures[i] = make([]*actor.Future, len(qs))
			for j, q := range qs {
				futures[i][j] = rt.system.Root.RequestFuture(e.PID, q, timeout)
			}
		}
	}
	out := make([]asked, len(entries))
	for i, e := range entries {
		out[i] = asked{entry: e, replies: make([]any, len(qs))}
		missing := futures[i] == nil
		for j, f := range futures[i] {
			reply, err := f.Result()
			if err != nil {
				reply, missing = nil, true
			}
			out[i].replies[j] = reply
		}
		if missing && futures[i] != nil {
			// It may have crashed while we waited: supervision knows.
			if now, ok := rt.reg.Get(e.Name); ok {
				out[i].entry = now
			}
		}
	}
	return out
}
