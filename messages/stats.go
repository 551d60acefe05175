package messages

// RouterStats is the WorkerRouter's view: queue and workers.
type RouterStats struct {
	Workers        int   `json:"workers"`         // live worker actors
	ActiveTasks    int   `json:"active_tasks"`    // tasks running on workers
	Queued         int   `json:"queued"`          // tasks waiting in the queue
	QueueCapacity  int   `json:"max_size"`        // parallel_execution.queue_size
	PriorityLevels int   `json:"priority_levels"` // queue levels in use (1 when advanced optimization is off)
	LoadBalancing  bool  `json:"load_balancing"`
	Replaced       int64 `json:"workers_replaced"` // workers replaced: no answer to a health check, stopped, or wedged past a task's timeout
	Draining       bool  `json:"draining"`         // shutting down: no new tasks accepted
	// Coalesced counts tasks answered with an identical task's call
	// (enable_collaboration); Flights are the shared calls in flight now.
	Coalesced uint64 `json:"coalesced"`
	Flights   int    `json:"flights"`
	// Outcomes counts finished tasks by outcome ("succeeded", or the
	// failure's code) since start, over every upstream: deer_tasks_total
	// summed over its upstream label.
	Outcomes map[string]uint64 `json:"outcomes"`
	// Latency is over the tasks finished in the last few seconds.
	Latency LatencyStats `json:"latency"`
}

// PoolStats is one upstream's connection pool.
type PoolStats struct {
	Upstream          string  `json:"upstream"`
	ActiveConnections int     `json:"active_connections"`
	MaxConnections    int     `json:"max_connections"`
	Utilization       float64 `json:"utilization"`
	TotalAcquired     uint64  `json:"total_acquired"`
	LaneAcquired      uint64  `json:"lane_acquired"` // of them, taken from the pool's lane without a message
	TotalReleased     uint64  `json:"total_released"`
	PeakUsage         int     `json:"peak_usage"`
	Reclaimed         uint64  `json:"reclaimed"`    // leases reclaimed after worker_timeout
	Waiting           int     `json:"waiting"`      // lease requests queued because max_connections are out
	IdleTimeout       float64 `json:"idle_timeout"` // seconds, as applied to the transport
	DialTimeout       float64 `json:"connection_timeout"`
	DialRetries       int     `json:"max_retries"`
	WarmConnections   int     `json:"warm_connections"` // connections opened ahead of the first task
	// Snapshot is set when the pool was too busy to answer in time and
	// these are the numbers it last published (at most 50 ms old then).
	Snapshot        bool   `json:"snapshot,omitempty"`
	DialRetriesUsed uint64 `json:"dial_retries"`  // dials retried after a failure
	DialFailures    uint64 `json:"dial_failures"` // dials that failed after every retry
}

// BatchStats is one upstream's embedding batcher.
type BatchStats struct {
	Upstream        string  `json:"upstream"`
	Enabled         bool    `json:"enabled"` // upstream has batch = "openai-embeddings"
	Pending         int     `json:"pending"`
	MaxQueueSize    int     `json:"max_queue_size"`
	BatchSize       int     `json:"batch_size"`
	BatchTimeout    float64 `json:"batch_timeout"`
	PriorityEnabled bool    `json:"priority_enabled"` // in effect: also needs advanced optimization and >1 priority level
	AdaptiveSizing  bool    `json:"adaptive_sizing"`
	BatchesSent     uint64  `json:"batches_sent"`
	ItemsSent       uint64  `json:"items_sent"`
	InputsSent      uint64  `json:"inputs_sent"`
	Rejected        uint64  `json:"rejected"` // items refused because the queue was full
}

// CacheTierStats is one cache tier.
type CacheTierStats struct {
	Tier      string  `json:"tier"` // l1, l2, l3
	Enabled   bool    `json:"enabled"`
	Policy    string  `json:"eviction_policy"`
	Entries   int     `json:"entries"`
	Capacity  int     `json:"capacity"`
	Hits      uint64  `json:"hits"`
	Misses    uint64  `json:"misses"`
	Evictions uint64  `json:"evictions"`
	Expired   uint64  `json:"expired"`
	TTL       float64 `json:"default_ttl"`
}

// LimiterStats is one upstream's rate limiter.
type LimiterStats struct {
	Upstream       string  `json:"upstream"`
	Enabled        bool    `json:"enabled"`
	CurrentRate    float64 `json:"current_rate"` // requests/s
	MinRate        float64 `json:"min_rate"`
	MaxRate        float64 `json:"max_rate"`
	Burst          int     `json:"burst_allowance"`
	Tokens         float64 `json:"tokens"` // tokens in the bucket now
	Granted        uint64  `json:"granted"`
	Waiting        int     `json:"waiting"`         // callers queued for a token
	Throttles      uint64  `json:"throttles"`       // 429/503/overload signals observed
	Increases      uint64  `json:"increases"`       // rate raised (demand, config)
	Decreases      uint64  `json:"decreases"`       // rate lowered (throttles, config)
	PausedFor      float64 `json:"paused_for"`      // seconds left of a Retry-After pause
	Retries        uint64  `json:"retries"`         // retries granted from the budget
	RetriesRefused uint64  `json:"retries_refused"` // retries refused: budget spent
	// Cluster is the shared budget's side (cluster.redis_url set); nil on
	// a single node.
	Cluster *LimiterCluster `json:"cluster,omitempty"`
}

// LimiterCluster is how one node's limiter takes part in the cluster-wide
// budget of its upstream (docs/cluster.md, "Global rate limit").
type LimiterCluster struct {
	SharedRate  float64 `json:"shared_rate"`  // the cluster's rate for the upstream, requests/s, as last read
	Pilot       bool    `json:"pilot"`        // this node runs the adaptation for the cluster
	Leased      uint64  `json:"leased"`       // tokens leased from the shared budget
	RedisCalls  uint64  `json:"redis_calls"`  // lease round trips
	RedisErrors uint64  `json:"redis_errors"` // lease calls that failed
	Leasing     bool    `json:"leasing"`      // a lease call is out now
	Fallback    bool    `json:"fallback"`     // Redis unreachable: limiting locally at shared_rate / nodes_alive
	LocalRate   float64 `json:"local_rate"`   // the rate used while in fallback
	NodesAlive  int     `json:"nodes_alive"`  // as last seen
}

// BreakerStats is one upstream endpoint's circuit breaker.
type BreakerStats struct {
	Upstream            string  `json:"upstream"`
	Endpoint            string  `json:"endpoint"`
	Enabled             bool    `json:"enabled"`
	State               string  `json:"state"` // closed, open, half_open
	ConsecutiveFailures int     `json:"consecutive_failures"`
	Threshold           int     `json:"threshold"`
	OpenTimeout         float64 `json:"timeout"`
	Opens               uint64  `json:"opens"`
	Generation          uint64  `json:"generation"` // bumped on every state change
	RetryIn             float64 `json:"retry_in"`   // open: seconds until a probe may go
}

// MetricsStats is the metrics actor: history retention and exports.
type MetricsStats struct {
	Enabled        bool    `json:"enabled"`
	Snapshots      int     `json:"snapshots"`
	ExportInterval float64 `json:"export_interval"`
	Retention      float64 `json:"metrics_retention"`
	Pushes         uint64  `json:"pushes"`
	PushErrors     uint64  `json:"push_errors"`
}

// HTTPStats is the HTTP ingress.
type HTTPStats struct {
	Addr     string `json:"addr"`
	Requests uint64 `json:"requests"`
	InFlight int64  `json:"in_flight"`
	Rejected uint64 `json:"rejected"` // 4xx answers for bad input, auth or size
}

// LatencyStats are quantiles of task latency (acceptance to answer) over the
// tasks finished in a recent window.
type LatencyStats struct {
	Window float64 `json:"window_seconds"` // how far back the window reaches
	Count  int     `json:"count"`          // tasks in it (the newest ones only, when very many)
	P50    float64 `json:"p50_seconds"`    // 0 when Count is 0
	P99    float64 `json:"p99_seconds"`
}
