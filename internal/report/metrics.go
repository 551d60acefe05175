package report

import (
	"runtime"
	"sort"

	"github.com/deer-runtime/deer/messages"
)

// MetricsReport is the /metrics JSON document (SPEC §4), with per-upstream,
// per-tier and per-actor detail beside the reference guide's fields.
type MetricsReport struct {
	Timestamp             float64                `json:"timestamp"`
	ConnectionPool        PoolSummary            `json:"connection_pool"`
	RequestQueue          QueueSummary           `json:"request_queue"`
	AdvancedOptimizations AdvancedOptimizations  `json:"advanced_optimizations"`
	BatchProcessor        BatchSummary           `json:"batch_processor"`
	Tasks                 TasksSummary           `json:"tasks"`
	HTTP                  *messages.HTTPStats    `json:"http,omitempty"`           // deerd's ingress: requests, in flight, rejected
	Export                *messages.MetricsStats `json:"metrics_export,omitempty"` // history snapshots and pushes
	Actors                ActorsSummary          `json:"actors"`
	SystemInfo            SystemInfo             `json:"system_info"`
	// Cluster: as /health's, plus the shared budget of each upstream;
	// absent on a single node.
	Cluster any `json:"cluster,omitempty"`
}

// PoolSummary sums the upstream pools. Each upstream has a pool of its own
// of connection_pool.max_connections, so MaxConnections (the reference
// guide's name, kept) is the sum over the upstreams; each pool's own is in
// Upstreams (docs/api.md says so).
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
	ActiveTasks     int   `json:"active_tasks"`
	Workers         int   `json:"workers"`
	Queued          int   `json:"queued"`
	PriorityLevels  int   `json:"priority_levels"`
	LoadBalancing   bool  `json:"load_balancing"`
	WorkersReplaced int64 `json:"workers_replaced"`
	Draining        bool  `json:"draining"`
	// Coalesced counts tasks answered with an identical task's call;
	// Flights are the shared calls in flight now (enable_collaboration).
	Coalesced uint64 `json:"coalesced"`
	Flights   int    `json:"flights"`
	Status    string `json:"status"`
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
	L1Hits  uint64  `json:"l1_hits"`
	L2Hits  uint64  `json:"l2_hits"`
	L3Hits  uint64  `json:"l3_hits"`
	Misses  uint64  `json:"misses"`
	HitRate float64 `json:"hit_rate"`
	// Demotions are entries L1 or L2 pushed out to the tier below;
	// Evictions are entries L3 pushed out: gone from every tier.
	Demotions uint64 `json:"demotions"`
	Evictions uint64 `json:"evictions"`
	L1Entries int    `json:"l1_entries"`
	L2Entries int    `json:"l2_entries"`
	L3Entries int    `json:"l3_entries"`
}

// ErrorRecovery summarises the breakers: the worst state of any endpoint
// (open, then half_open, then closed).
type ErrorRecovery struct {
	CircuitBreakerState string                            `json:"circuit_breaker_state"`
	Status              string                            `json:"status"`
	Breakers            map[string]*messages.BreakerStats `json:"breakers"`
}

// BatchSummary sums the upstream batchers. CallsSaved is what batching
// saved: embedding calls sent combined (ItemsSent) less the upstream calls
// that carried them (BatchesSent).
type BatchSummary struct {
	Pending     int                             `json:"pending"`
	BatchesSent uint64                          `json:"batches_sent"`
	ItemsSent   uint64                          `json:"items_sent"`
	CallsSaved  uint64                          `json:"calls_saved"`
	Rejected    uint64                          `json:"rejected"`
	Upstreams   map[string]*messages.BatchStats `json:"upstreams"`
}

// TasksSummary is the router's count of finished tasks: Total and
// ByOutcome since start ("succeeded", or the failure's code), and the
// latency quantiles of the last few seconds' tasks.
type TasksSummary struct {
	Total     uint64                `json:"total"`
	ByOutcome map[string]uint64     `json:"by_outcome"`
	Latency   messages.LatencyStats `json:"latency"`
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

// Process reads this process's SystemInfo (all but the uptime, which
// Metrics fills in). It is the one impure function of the package: the
// runtime calls it and passes the result to Metrics.
func Process() SystemInfo {
	return SystemInfo{
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS,
		Arch:       runtime.GOARCH,
		NumCPU:     runtime.NumCPU(),
		Goroutines: runtime.NumGoroutine(),
	}
}

// Metrics builds the /metrics document from every actor's answers to
// StatsQuery (summed into the reference guide's fields, the detail kept
// beside them) and to StatusQuery (the advanced components' status, mapped
// as /health maps them). An actor without stats is listed in
// actors.unanswered, except workers: the router reports them as a set.
func Metrics(in Input, proc SystemInfo) *MetricsReport {
	cfg := in.Config
	proc.UptimeSeconds = in.Now.Sub(in.Started).Seconds()
	rep := &MetricsReport{
		Timestamp:      unixSeconds(in.Now),
		ConnectionPool: PoolSummary{Upstreams: map[string]*messages.PoolStats{}},
		RequestQueue:   QueueSummary{MaxSize: cfg.ParallelExecution.QueueSize},
		AdvancedOptimizations: AdvancedOptimizations{
			RateLimiter:   RateLimiter{Upstreams: map[string]*messages.LimiterStats{}},
			MemoryManager: MemoryManager{Tiers: map[string]*messages.CacheTierStats{}},
			ErrorRecovery: ErrorRecovery{CircuitBreakerState: "closed", Breakers: map[string]*messages.BreakerStats{}},
		},
		BatchProcessor: BatchSummary{Upstreams: map[string]*messages.BatchStats{}},
		Tasks:          TasksSummary{ByOutcome: map[string]uint64{}},
		Actors:         ActorsSummary{Restarts: map[string]int{}, Unanswered: []string{}},
		SystemInfo:     proc,
	}
	adv := &rep.AdvancedOptimizations
	var rateSum float64
	for _, a := range in.Answers {
		rep.Actors.Total++
		rep.Actors.Restarts[a.Entry.Name] = a.Entry.Restarts
		if a.Stats == nil {
			if !isWorker(a.Entry.Name) {
				rep.Actors.Unanswered = append(rep.Actors.Unanswered, a.Entry.Name)
			}
			continue
		}
		switch s := a.Stats.Stats.(type) {
		case *messages.RouterStats:
			rep.RequestQueue = QueueSummary{Size: s.Queued, MaxSize: s.QueueCapacity}
			adv.ParallelExecutor = ParallelExecutor{
				ActiveTasks: s.ActiveTasks, Workers: s.Workers, Queued: s.Queued,
				PriorityLevels: s.PriorityLevels, LoadBalancing: s.LoadBalancing, WorkersReplaced: s.Replaced,
				Draining: s.Draining, Coalesced: s.Coalesced, Flights: s.Flights,
			}
			rep.Tasks.Latency = s.Latency
			for outcome, n := range s.Outcomes {
				rep.Tasks.ByOutcome[outcome] = n
				rep.Tasks.Total += n
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
			adv.ErrorRecovery.Breakers[a.Entry.Name] = s
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
			if s.ItemsSent > s.BatchesSent { // a batch carries at least one item
				b.CallsSaved += s.ItemsSent - s.BatchesSent
			}
			b.Rejected += s.Rejected
		}
	}
	if p := &rep.ConnectionPool; p.MaxConnections > 0 {
		p.Utilization = float64(p.ActiveConnections) / float64(p.MaxConnections)
	}
	if n := len(adv.RateLimiter.Upstreams); n > 0 {
		adv.RateLimiter.CurrentRate = rateSum / float64(n)
	}
	adv.MemoryManager.CacheStats = cacheStats(adv.MemoryManager.Tiers)
	sort.Strings(rep.Actors.Unanswered)

	status := advancedStates(actorStates(in.Answers), cfg.EnableAdvancedOptimization)
	adv.ParallelExecutor.Status = status["parallel_executor"]
	adv.RateLimiter.Status = status["rate_limiter"]
	adv.MemoryManager.Status = status["memory_manager"]
	adv.ErrorRecovery.Status = status["error_recovery"]
	return rep
}

func cacheStats(tiers map[string]*messages.CacheTierStats) CacheStats {
	var cs CacheStats
	if t := tiers[messages.TierL1]; t != nil {
		cs.L1Hits, cs.L1Entries, cs.Demotions = t.Hits, t.Entries, t.Evictions
	}
	if t := tiers[messages.TierL2]; t != nil {
		cs.L2Hits, cs.L2Entries = t.Hits, t.Entries
		cs.Demotions += t.Evictions
	}
	if t := tiers[messages.TierL3]; t != nil {
		cs.L3Hits, cs.L3Entries, cs.Misses, cs.Evictions = t.Hits, t.Entries, t.Misses, t.Evictions
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
