package deer

import (
	"context"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// askTimeout bounds how long /health and /metrics wait for one actor: an
// actor that does not answer in time is reported, not waited on.
const askTimeout = 500 * time.Millisecond

// Actor states in /health's "actors" detail, beyond the StatusReport states.
const (
	stateRestarting    = "restarting"
	stateDown          = "down"
	stateNotResponding = "not_responding"
)

// ActorHealth is one actor's line in /health.
type ActorHealth struct {
	State    string `json:"state"`
	Detail   string `json:"detail,omitempty"`
	Restarts int    `json:"restarts"`
}

// HealthReport is the /health document (SPEC §4).
type HealthReport struct {
	Status             string                 `json:"status"`
	Timestamp          float64                `json:"timestamp"`
	Configuration      HealthConfiguration    `json:"configuration"`
	Components         map[string]string      `json:"components"`
	AdvancedComponents map[string]string      `json:"advanced_components"`
	Actors             map[string]ActorHealth `json:"actors"`
	UptimeSeconds      float64                `json:"uptime_seconds"`
}

// HealthConfiguration is the switches /health echoes.
type HealthConfiguration struct {
	AdvancedOptimization bool `json:"advanced_optimization"`
	Collaboration        bool `json:"collaboration"`
	DebugMode            bool `json:"debug_mode"`
}

// component groups actors by the SPEC name prefix that /health aggregates.
type component struct {
	key      string
	prefixes []string
}

var (
	basicComponents = []component{
		{"connection_pool", []string{"pool/"}},
		{"request_queue", []string{"router", "worker/"}},
		{"batch_processor", []string{"batch/"}},
	}
	advancedComponents = []component{
		{"parallel_executor", []string{"router", "worker/"}},
		{"rate_limiter", []string{"limiter/"}},
		{"memory_manager", []string{"cache/"}},
		{"error_recovery", []string{"breaker/"}},
	}
)

func (c component) has(name string) bool {
	for _, p := range c.prefixes {
		if name == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(name, p)) {
			return true
		}
	}
	return false
}

// answer is one actor's reply (or its absence) to a query.
type answer struct {
	entry supervisor.Entry
	reply any
	err   error
}

// ask sends q to every registered running actor at once and collects the
// replies, waiting at most askTimeout (or less, if ctx ends first).
func (rt *Runtime) ask(ctx context.Context, q any) []answer {
	return rt.askWithin(ctx, q, askTimeout)
}

// askWithin is ask with its own bound on the wait.
func (rt *Runtime) askWithin(ctx context.Context, q any, limit time.Duration) []answer {
	entries := rt.reg.Entries()
	timeout := limit
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	futures := make([]*actor.Future, len(entries))
	for i, e := range entries {
		if e.State == supervisor.Running && e.PID != nil && timeout > 0 {
			futures[i] = rt.system.Root.RequestFuture(e.PID, q, timeout)
		}
	}
	out := make([]answer, len(entries))
	for i, e := range entries {
		out[i].entry = e
		if futures[i] != nil {
			out[i].reply, out[i].err = futures[i].Result()
			if out[i].err != nil {
				// It may have crashed while we waited: supervision knows.
				if now, ok := rt.reg.Get(e.Name); ok {
					out[i].entry = now
				}
			}
		}
	}
	return out
}

// actorState turns an answer into the state /health shows for that actor.
func actorState(a answer) ActorHealth {
	h := ActorHealth{Restarts: a.entry.Restarts}
	switch {
	case a.entry.State == supervisor.Restarting:
		h.State, h.Detail = stateRestarting, a.entry.LastFailure
	case a.entry.State == supervisor.Stopped:
		h.State, h.Detail = stateDown, a.entry.LastFailure
	case a.err != nil || a.reply == nil:
		h.State = stateNotResponding
	default:
		if rep, ok := a.reply.(*messages.StatusReport); ok {
			h.State, h.Detail = rep.State, rep.Detail
		} else {
			h.State = stateNotResponding
		}
	}
	return h
}

// Health asks every actor how it is and builds the /health document.
func (rt *Runtime) Health(ctx context.Context) *HealthReport {
	cfg := rt.live.Load()
	answers := rt.ask(ctx, &messages.StatusQuery{})
	rep := &HealthReport{
		Timestamp: unixSeconds(rt.clock.Now()),
		Configuration: HealthConfiguration{
			AdvancedOptimization: cfg.EnableAdvancedOptimization,
			Collaboration:        cfg.EnableCollaboration,
			DebugMode:            cfg.DebugMode,
		},
		Components:         map[string]string{},
		AdvancedComponents: map[string]string{},
		Actors:             map[string]ActorHealth{},
		UptimeSeconds:      rt.clock.Now().Sub(rt.started).Seconds(),
	}
	for _, a := range answers {
		rep.Actors[a.entry.Name] = actorState(a)
	}
	for _, c := range basicComponents {
		st := componentState(c, rep.Actors)
		if st == messages.StateDisabled {
			// A basic component switched off by configuration (no upstream
			// batches) has nothing wrong with it; SPEC's states for
			// components have no "disabled".
			st = messages.StateHealthy
		}
		rep.Components[c.key] = st
	}
	for _, c := range advancedComponents {
		rep.AdvancedComponents[c.key] = advancedState(componentState(c, rep.Actors), cfg.EnableAdvancedOptimization)
	}
	rep.Status = overallStatus(rep)
	return rep
}

// advancedState maps a component's state onto SPEC's three for advanced
// components: active, disabled, restarting. A component with an actor down
// or not answering is neither active nor disabled; its supervisor restarts
// a crashed actor (escalating if it must), so it reads "restarting", while
// the overall status (unhealthy) and the actors map carry the detail.
func advancedState(st string, enabled bool) string {
	switch {
	case !enabled, st == messages.StateDisabled:
		return messages.StateDisabled
	case st == stateDown || st == stateRestarting:
		return stateRestarting
	}
	return "active"
}

// componentState aggregates the actors of one component: the worst state
// wins. Workers are a pool: some down means less capacity (degraded), all
// down means the component is down. A component with no actors (no upstream
// configured) has nothing wrong with it.
func componentState(c component, actors map[string]ActorHealth) string {
	var total, down, restarting, degraded, disabled int
	for name, h := range actors {
		if !c.has(name) {
			continue
		}
		total++
		switch h.State {
		case stateDown, stateNotResponding:
			if strings.HasPrefix(name, "worker/") {
				degraded++ // one lost worker is lost capacity, not a lost component
			} else {
				down++
			}
		case stateRestarting:
			restarting++
		case messages.StateDegraded:
			degraded++
		case messages.StateDisabled:
			disabled++
		}
	}
	switch {
	case down > 0:
		return stateDown
	case restarting > 0:
		return stateRestarting
	case degraded > 0:
		return messages.StateDegraded
	case total > 0 && disabled == total:
		return messages.StateDisabled
	}
	return messages.StateHealthy
}

func overallStatus(rep *HealthReport) string {
	status := "healthy"
	for _, states := range []map[string]string{rep.Components, rep.AdvancedComponents} {
		for _, s := range states {
			switch s {
			case stateDown:
				return "unhealthy"
			case stateRestarting, messages.StateDegraded:
				status = "degraded"
			}
		}
	}
	for name, a := range rep.Actors {
		switch {
		case (a.State == stateDown || a.State == stateNotResponding) && !strings.HasPrefix(name, "worker/"):
			return "unhealthy"
		case a.State == stateRestarting || a.State == messages.StateDegraded:
			status = "degraded"
		}
	}
	return status
}

// Ready reports whether every actor outside the worker pool answers.
func (rt *Runtime) Ready(ctx context.Context) (bool, string) {
	if rt.stopping.Load() {
		return false, "shutting down"
	}
	for _, a := range rt.ask(ctx, &messages.Ping{}) {
		if a.err != nil || a.reply == nil {
			if !strings.HasPrefix(a.entry.Name, "worker/") {
				return false, a.entry.Name + " is " + actorState(a).State
			}
		}
	}
	return true, ""
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// MetricsReport is the /metrics JSON document (SPEC §4), with per-upstream,
// per-tier and per-actor detail beside the reference guide's fields.
type MetricsReport struct {
	Timestamp             float64                `json:"timestamp"`
	ConnectionPool        PoolSummary            `json:"connection_pool"`
	RequestQueue          QueueSummary           `json:"request_queue"`
	AdvancedOptimizations AdvancedOptimizations  `json:"advanced_optimizations"`
	BatchProcessor        BatchSummary           `json:"batch_processor"`
	HTTP                  *messages.HTTPStats    `json:"http,omitempty"`           // deerd's ingress: requests, in flight, rejected
	Export                *messages.MetricsStats `json:"metrics_export,omitempty"` // history snapshots and pushes
	Actors                ActorsSummary          `json:"actors"`
	SystemInfo            SystemInfo             `json:"system_info"`
}

// PoolSummary sums the upstream pools.
type PoolSummary struct {
	ActiveConnections int                            `json:"active_connections"`
	MaxConnections    int                            `json:"max_connections"`
	Utilization       float64                        `json:"utilization"`
	TotalAcquired     uint64                         `json:"total_acquired"`
	TotalReleased     uint64                         `json:"total_released"`
	PeakUsage         int                            `json:"peak_usage"`
	Upstreams         map[string]*messages.PoolStats `json:"upstreams"`
}

// QueueSummary is the router's queue.
type QueueSummary struct {
	Size    int `json:"size"`
	MaxSize int `json:"max_size"`
}

// AdvancedOptimizations groups the advanced components.
type AdvancedOptimizations struct {
	ParallelExecutor ParallelExecutor `json:"parallel_executor"`
	RateLimiter      RateLimiter      `json:"rate_limiter"`
	MemoryManager    MemoryManager    `json:"memory_manager"`
	ErrorRecovery    ErrorRecovery    `json:"error_recovery"`
}

// ParallelExecutor is the router and its workers.
type ParallelExecutor struct {
	ActiveTasks     int    `json:"active_tasks"`
	Workers         int    `json:"workers"`
	Queued          int    `json:"queued"`
	PriorityLevels  int    `json:"priority_levels"`
	LoadBalancing   bool   `json:"load_balancing"`
	WorkersReplaced int64  `json:"workers_replaced"`
	Draining        bool   `json:"draining"`
	Status          string `json:"status"`
}

// RateLimiter summarises the upstream limiters. CurrentRate is the mean of
// the upstreams' rates (their common value when they agree); each upstream's
// own rate is beside it.
type RateLimiter struct {
	CurrentRate float64                           `json:"current_rate"`
	Status      string                            `json:"status"`
	Upstreams   map[string]*messages.LimiterStats `json:"upstreams"`
}

// MemoryManager is the three cache tiers.
type MemoryManager struct {
	CacheStats CacheStats                          `json:"cache_stats"`
	Tiers      map[string]*messages.CacheTierStats `json:"tiers"`
	Status     string                              `json:"status"`
}

// CacheStats is the reference guide's hit counters. Misses counts lookups
// that missed every tier (the last tier's misses).
type CacheStats struct {
	L1Hits    uint64  `json:"l1_hits"`
	L2Hits    uint64  `json:"l2_hits"`
	L3Hits    uint64  `json:"l3_hits"`
	Misses    uint64  `json:"misses"`
	HitRate   float64 `json:"hit_rate"`
	L1Entries int     `json:"l1_entries"`
	L2Entries int     `json:"l2_entries"`
	L3Entries int     `json:"l3_entries"`
}

// ErrorRecovery summarises the breakers: the worst state of any endpoint
// (open, then half_open, then closed).
type ErrorRecovery struct {
	CircuitBreakerState string                            `json:"circuit_breaker_state"`
	Status              string                            `json:"status"`
	Breakers            map[string]*messages.BreakerStats `json:"breakers"`
}

// BatchSummary sums the upstream batchers.
type BatchSummary struct {
	Pending     int                             `json:"pending"`
	BatchesSent uint64                          `json:"batches_sent"`
	ItemsSent   uint64                          `json:"items_sent"`
	Rejected    uint64                          `json:"rejected"`
	Upstreams   map[string]*messages.BatchStats `json:"upstreams"`
}

// ActorsSummary is supervision's view of every actor.
type ActorsSummary struct {
	Total      int            `json:"total"`
	Restarts   map[string]int `json:"restarts"`
	Unanswered []string       `json:"unanswered"` // actors that did not answer the stats query in time
}

// SystemInfo describes the process.
type SystemInfo struct {
	GoVersion     string  `json:"go_version"`
	Platform      string  `json:"platform"`
	Arch          string  `json:"arch"`
	NumCPU        int     `json:"num_cpu"`
	Goroutines    int     `json:"goroutines"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

// Metrics asks every actor for its numbers and builds the /metrics document.
func (rt *Runtime) Metrics(ctx context.Context) *MetricsReport {
	cfg := rt.live.Load()
	now := rt.clock.Now()
	rep := &MetricsReport{
		Timestamp:      unixSeconds(now),
		ConnectionPool: PoolSummary{Upstreams: map[string]*messages.PoolStats{}},
		RequestQueue:   QueueSummary{MaxSize: cfg.ParallelExecution.QueueSize},
		AdvancedOptimizations: AdvancedOptimizations{
			RateLimiter:   RateLimiter{Upstreams: map[string]*messages.LimiterStats{}},
			MemoryManager: MemoryManager{Tiers: map[string]*messages.CacheTierStats{}},
			ErrorRecovery: ErrorRecovery{CircuitBreakerState: "closed", Breakers: map[string]*messages.BreakerStats{}},
		},
		BatchProcessor: BatchSummary{Upstreams: map[string]*messages.BatchStats{}},
		Actors:         ActorsSummary{Restarts: map[string]int{}, Unanswered: []string{}},
		SystemInfo: SystemInfo{
			GoVersion:     runtime.Version(),
			Platform:      runtime.GOOS,
			Arch:          runtime.GOARCH,
			NumCPU:        runtime.NumCPU(),
			Goroutines:    runtime.NumGoroutine(),
			UptimeSeconds: now.Sub(rt.started).Seconds(),
		},
	}
	adv := &rep.AdvancedOptimizations
	var rateSum float64
	for _, a := range rt.ask(ctx, &messages.StatsQuery{}) {
		rep.Actors.Total++
		rep.Actors.Restarts[a.entry.Name] = a.entry.Restarts
		sr, ok := a.reply.(*messages.StatsReport)
		if !ok {
			// A pool too busy to answer (its mailbox full of lease
			// requests) has published its recent numbers.
			if up, isPool := strings.CutPrefix(a.entry.Name, "pool/"); isPool {
				if snap := rt.poolStats[up].Load(); snap != nil {
					sr, ok = &messages.StatsReport{Actor: a.entry.Name, Stats: snap}, true
				}
			}
		}
		if !ok {
			if !strings.HasPrefix(a.entry.Name, "worker/") {
				rep.Actors.Unanswered = append(rep.Actors.Unanswered, a.entry.Name)
			}
			continue
		}
		switch s := sr.Stats.(type) {
		case *messages.RouterStats:
			rep.RequestQueue = QueueSummary{Size: s.Queued, MaxSize: s.QueueCapacity}
			adv.ParallelExecutor = ParallelExecutor{
				ActiveTasks: s.ActiveTasks, Workers: s.Workers, Queued: s.Queued,
				PriorityLevels: s.PriorityLevels, LoadBalancing: s.LoadBalancing, WorkersReplaced: s.Replaced,
				Draining: s.Draining,
			}
		case *messages.PoolStats:
			p := &rep.ConnectionPool
			p.Upstreams[s.Upstream] = s
			p.ActiveConnections += s.ActiveConnections
			p.MaxConnections += s.MaxConnections
			p.TotalAcquired += s.TotalAcquired
			p.TotalReleased += s.TotalReleased
			p.PeakUsage += s.PeakUsage
		case *messages.LimiterStats:
			adv.RateLimiter.Upstreams[s.Upstream] = s
			rateSum += s.CurrentRate
		case *messages.CacheTierStats:
			adv.MemoryManager.Tiers[s.Tier] = s
		case *messages.BreakerStats:
			adv.ErrorRecovery.Breakers[a.entry.Name] = s
			adv.ErrorRecovery.CircuitBreakerState = worseBreakerState(adv.ErrorRecovery.CircuitBreakerState, s.State)
		case *messages.HTTPStats:
			rep.HTTP = s
		case *messages.MetricsStats:
			rep.Export = s
		case *messages.BatchStats:
			b := &rep.BatchProcessor
			b.Upstreams[s.Upstream] = s
			b.Pending += s.Pending
			b.BatchesSent += s.BatchesSent
			b.ItemsSent += s.ItemsSent
			b.Rejected += s.Rejected
		}
	}
	if p := &rep.ConnectionPool; p.MaxConnections > 0 {
		p.Utilization = float64(p.ActiveConnections) / float64(p.MaxConnections)
	}
	if n := len(adv.RateLimiter.Upstreams); n > 0 {
		adv.RateLimiter.CurrentRate = rateSum / float64(n)
	}
	rep.AdvancedOptimizations.MemoryManager.CacheStats = cacheStats(adv.MemoryManager.Tiers)
	sort.Strings(rep.Actors.Unanswered)

	health := rt.advancedStatus(cfg.EnableAdvancedOptimization, rep.Actors.Unanswered)
	adv.ParallelExecutor.Status = health["parallel_executor"]
	adv.RateLimiter.Status = health["rate_limiter"]
	adv.MemoryManager.Status = health["memory_manager"]
	adv.ErrorRecovery.Status = health["error_recovery"]
	return rep
}

// advancedStatus derives the advanced components' status from supervision
// state and the stats answers, without a second round of questions.
func (rt *Runtime) advancedStatus(enabled bool, unanswered []string) map[string]string {
	actors := map[string]ActorHealth{}
	for _, e := range rt.reg.Entries() {
		actors[e.Name] = actorState(answer{entry: e, reply: &messages.StatusReport{State: messages.StateHealthy}})
	}
	for _, name := range unanswered {
		if h, ok := actors[name]; ok && h.State == messages.StateHealthy {
			h.State = stateNotResponding
			actors[name] = h
		}
	}
	out := map[string]string{}
	for _, c := range advancedComponents {
		st := componentState(c, actors)
		switch {
		case !enabled:
			st = messages.StateDisabled
		case st == messages.StateHealthy || st == messages.StateDegraded:
			st = "active"
		}
		out[c.key] = st
	}
	return out
}

func cacheStats(tiers map[string]*messages.CacheTierStats) CacheStats {
	var cs CacheStats
	if t := tiers["l1"]; t != nil {
		cs.L1Hits, cs.L1Entries = t.Hits, t.Entries
	}
	if t := tiers["l2"]; t != nil {
		cs.L2Hits, cs.L2Entries = t.Hits, t.Entries
	}
	if t := tiers["l3"]; t != nil {
		cs.L3Hits, cs.L3Entries, cs.Misses = t.Hits, t.Entries, t.Misses
	}
	if total := cs.L1Hits + cs.L2Hits + cs.L3Hits + cs.Misses; total > 0 {
		cs.HitRate = float64(cs.L1Hits+cs.L2Hits+cs.L3Hits) / float64(total)
	}
	return cs
}

var breakerSeverity = map[string]int{"closed": 0, "half_open": 1, "open": 2}

func worseBreakerState(a, b string) string {
	if breakerSeverity[b] > breakerSeverity[a] {
		return b
	}
	return a
}
