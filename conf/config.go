// Package conf holds deer's configuration: one struct tree, its built-in
// defaults, the layered loader (defaults < profile < file < env) and
// validation whose messages name the key at fault.
package conf

// Config is the whole configuration of a deer runtime. TOML keys and JSON
// paths (GET/POST /config) are the same names. Durations are seconds as
// float64, so that they read the same in TOML, JSON and DEER_* env vars.
type Config struct {
	// EnableAdvancedOptimization turns on the rate limiter, cache, error
	// recovery and priorities. Default true. Live.
	EnableAdvancedOptimization bool `toml:"enable_advanced_optimization" json:"enable_advanced_optimization"`
	// EnableCollaboration coalesces identical in-flight requests. Default true. Live.
	EnableCollaboration bool `toml:"enable_collaboration" json:"enable_collaboration"`
	// DebugMode switches to debug-level console logs, /debug/pprof and the
	// fault-injection API. Default false. Live.
	DebugMode bool `toml:"debug_mode" json:"debug_mode"`
	// DefaultUpstream names the upstream used when a model matches none.
	// Default "" (no default). Live.
	DefaultUpstream string `toml:"default_upstream" json:"default_upstream"`

	Server            Server              `toml:"server" json:"server"`
	ConnectionPool    ConnectionPool      `toml:"connection_pool" json:"connection_pool"`
	BatchProcessing   BatchProcessing     `toml:"batch_processing" json:"batch_processing"`
	Cache             Cache               `toml:"cache" json:"cache"`
	RateLimit         RateLimit           `toml:"rate_limit" json:"rate_limit"`
	ErrorRecovery     ErrorRecovery       `toml:"error_recovery" json:"error_recovery"`
	ParallelExecution ParallelExecution   `toml:"parallel_execution" json:"parallel_execution"`
	Monitoring        Monitoring          `toml:"monitoring" json:"monitoring"`
	Cluster           Cluster             `toml:"cluster" json:"cluster"`
	Upstreams         map[string]Upstream `toml:"upstreams" json:"upstreams"`
}

// Server configures deerd's HTTP listener and admin access.
type Server struct {
	// Addr is the listen address. Default "127.0.0.1:8000". Restart to change.
	Addr string `toml:"addr" json:"addr"`
	// AdminToken, when set, is required as a Bearer token by POST /config*
	// and /faults. Default "" (none). Secret: redacted in output.
	AdminToken string `toml:"admin_token" json:"admin_token"`
	// MaxBodyBytes bounds request bodies. Default 10 MiB. Live.
	MaxBodyBytes int64 `toml:"max_body_bytes" json:"max_body_bytes"`
	// FaultInjection enables /faults without debug_mode. Default false. Live.
	FaultInjection bool `toml:"fault_injection" json:"fault_injection"`
}

// ConnectionPool configures the per-upstream HTTP connection pools.
type ConnectionPool struct {
	MaxConnections     int     `toml:"max_connections" json:"max_connections"`         // per upstream host; default 50
	InitialConnections int     `toml:"initial_connections" json:"initial_connections"` // opened before the first task; default 10
	ConnectionTimeout  float64 `toml:"connection_timeout" json:"connection_timeout"`   // seconds, dial + TLS; default 30
	IdleTimeout        float64 `toml:"idle_timeout" json:"idle_timeout"`               // seconds; default 300
	MaxRetries         int     `toml:"max_retries" json:"max_retries"`                 // dial retries; default 3
}

// BatchProcessing configures micro-batching of embedding calls.
type BatchProcessing struct {
	BatchSize       int     `toml:"batch_size" json:"batch_size"`             // inputs per combined call; default 10
	BatchTimeout    float64 `toml:"batch_timeout" json:"batch_timeout"`       // seconds to fill a batch; default 1.5
	MaxQueueSize    int     `toml:"max_queue_size" json:"max_queue_size"`     // pending items; default 1000
	PriorityEnabled bool    `toml:"priority_enabled" json:"priority_enabled"` // high priority flushes at once; default true
	AdaptiveSizing  bool    `toml:"adaptive_sizing" json:"adaptive_sizing"`   // default true
}

// Cache configures the three cache tiers.
type Cache struct {
	L1Size          int     `toml:"l1_size" json:"l1_size"`                     // entries in memory; default 1000
	L2Size          int     `toml:"l2_size" json:"l2_size"`                     // entries in memory; default 5000
	L3Size          int     `toml:"l3_size" json:"l3_size"`                     // entries, persistent; default 10000
	DefaultTTL      float64 `toml:"default_ttl" json:"default_ttl"`             // seconds; default 3600
	CleanupInterval float64 `toml:"cleanup_interval" json:"cleanup_interval"`   // seconds; default 300
	EvictionPolicy  string  `toml:"eviction_policy" json:"eviction_policy"`     // lru, lfu, fifo; default "lru"
	L3Path          string  `toml:"l3_path" json:"l3_path"`                     // directory of the L3 store; default "./data/cache"; restart to change
	ShareAcrossKeys bool    `toml:"share_across_keys" json:"share_across_keys"` // default false: the credential is part of the key
	L3Backend       string  `toml:"l3_backend" json:"l3_backend"`               // "bolt" (the file at l3_path) or "redis" (shared through cluster.redis_url); default "bolt"; restart to change
}

// RateLimit configures the adaptive per-upstream rate limiter.
type RateLimit struct {
	InitialRate      float64 `toml:"initial_rate" json:"initial_rate"`           // requests/s; default 10
	MaxRate          float64 `toml:"max_rate" json:"max_rate"`                   // requests/s; default 100
	MinRate          float64 `toml:"min_rate" json:"min_rate"`                   // requests/s; default 1
	AdaptationFactor float64 `toml:"adaptation_factor" json:"adaptation_factor"` // default 1.2
	WindowSize       float64 `toml:"window_size" json:"window_size"`             // seconds; default 60
	BurstAllowance   int     `toml:"burst_allowance" json:"burst_allowance"`     // bucket depth; default 20
}

// ErrorRecovery configures retries and circuit breakers.
type ErrorRecovery struct {
	MaxRetries              int     `toml:"max_retries" json:"max_retries"`                             // after the first attempt; default 3
	BaseDelay               float64 `toml:"base_delay" json:"base_delay"`                               // seconds; default 1
	MaxDelay                float64 `toml:"max_delay" json:"max_delay"`                                 // seconds; default 60
	ExponentialBase         float64 `toml:"exponential_base" json:"exponential_base"`                   // default 2
	CircuitBreakerThreshold int     `toml:"circuit_breaker_threshold" json:"circuit_breaker_threshold"` // failures within failure_window that open an endpoint's breaker; default 5
	FailureWindow           float64 `toml:"failure_window" json:"failure_window"`                       // seconds of calls the breaker counts failures over, rolled in tenths; default 10
	FailureRateThreshold    float64 `toml:"failure_rate_threshold" json:"failure_rate_threshold"`       // share of failure_window's calls those failures must be, in (0, 1]; default 0.5
	CircuitBreakerTimeout   float64 `toml:"circuit_breaker_timeout" json:"circuit_breaker_timeout"`     // seconds open; default 60
	JitterEnabled           bool    `toml:"jitter_enabled" json:"jitter_enabled"`                       // default true
}

// ParallelExecution configures the router and its workers.
type ParallelExecution struct {
	MaxWorkers          int     `toml:"max_workers" json:"max_workers"`                     // default 20
	QueueSize           int     `toml:"queue_size" json:"queue_size"`                       // default 1000
	PriorityLevels      int     `toml:"priority_levels" json:"priority_levels"`             // default 3; level 0 most urgent
	LoadBalancing       bool    `toml:"load_balancing" json:"load_balancing"`               // default true
	WorkerTimeout       float64 `toml:"worker_timeout" json:"worker_timeout"`               // seconds; default 300
	HealthCheckInterval float64 `toml:"health_check_interval" json:"health_check_interval"` // seconds; default 30
}

// Monitoring configures metrics, logs and history.
type Monitoring struct {
	MetricsEnabled           bool    `toml:"metrics_enabled" json:"metrics_enabled"`                       // default true
	DetailedLogging          bool    `toml:"detailed_logging" json:"detailed_logging"`                     // default true
	SlowRequestThreshold     float64 `toml:"slow_request_threshold" json:"slow_request_threshold"`         // seconds; default 10
	HighUtilizationThreshold float64 `toml:"high_utilization_threshold" json:"high_utilization_threshold"` // 0..1; default 0.8
	MetricsRetention         float64 `toml:"metrics_retention" json:"metrics_retention"`                   // seconds; default 86400
	ExportInterval           float64 `toml:"export_interval" json:"export_interval"`                       // seconds; default 60
	PushURL                  string  `toml:"push_url" json:"push_url"`                                     // Prometheus text pushed here every export_interval; default ""
}

// Cluster makes deerd one node of several that share rate limits,
// breakers, the L3 cache and tasks through Redis (docs/cluster.md).
type Cluster struct {
	// RedisURL is the Redis every node of the cluster uses, as
	// redis://[user:password@]host:port[/db] (rediss:// for TLS). Default ""
	// (one node: nothing is shared, nothing to install). Restart to change.
	RedisURL string `toml:"redis_url" json:"redis_url"`
}

// Upstream is one provider deer may call, a [upstreams.NAME] table. NAME
// matches [a-z0-9_-]+ (it appears in actor names and /proxy URLs).
// Upstreams are fixed at start: POST /config refuses to change them.
type Upstream struct {
	BaseURL   string   `toml:"base_url" json:"base_url"`       // absolute http(s) URL, no query; required
	APIKeyEnv string   `toml:"api_key_env" json:"api_key_env"` // name of the env var holding the key, sent as a Bearer token; default "" (none)
	Models    []string `toml:"models" json:"models"`           // model names routed here; each listed by one upstream only; default none
	Cache     string   `toml:"cache" json:"cache"`             // auto, always, never; default "auto"
	Batch     string   `toml:"batch" json:"batch"`             // "" or "openai-embeddings"; default ""
	Endpoints []string `toml:"endpoints" json:"endpoints"`     // extra base URLs to balance over; default none
	Timeout   float64  `toml:"timeout" json:"timeout"`         // seconds per attempt; default 60
	Builtin   bool     `toml:"builtin" json:"builtin"`         // deerd serves the simulator at base_url (http only); default false
	// RateLimit, the [upstreams.NAME.rate_limit] table, overrides rate_limit
	// keys for this upstream's limiter. Default: none. Live, unlike the
	// rest of the upstream: see Config.RateLimitFor.
	RateLimit RateLimitOverride `toml:"rate_limit,omitempty" json:"rate_limit"`
}

// RateLimitOverride holds the rate_limit keys one upstream sets for itself;
// a nil field follows the top-level rate_limit key, including its live
// changes. Ranges are rate_limit's, checked on the effective values.
type RateLimitOverride struct {
	InitialRate      *float64 `toml:"initial_rate,omitempty" json:"initial_rate,omitempty"`
	MaxRate          *float64 `toml:"max_rate,omitempty" json:"max_rate,omitempty"`
	MinRate          *float64 `toml:"min_rate,omitempty" json:"min_rate,omitempty"`
	AdaptationFactor *float64 `toml:"adaptation_factor,omitempty" json:"adaptation_factor,omitempty"`
	WindowSize       *float64 `toml:"window_size,omitempty" json:"window_size,omitempty"`
	BurstAllowance   *int     `toml:"burst_allowance,omitempty" json:"burst_allowance,omitempty"`
}

// RateLimitFor returns the rate_limit settings the limiter of upstream
// name runs on: the top-level ones with the upstream's overrides applied.
func (c *Config) RateLimitFor(name string) RateLimit {
	r, o := c.RateLimit, c.Upstreams[name].RateLimit
	override(&r.InitialRate, o.InitialRate)
	override(&r.MaxRate, o.MaxRate)
	override(&r.MinRate, o.MinRate)
	override(&r.AdaptationFactor, o.AdaptationFactor)
	override(&r.WindowSize, o.WindowSize)
	override(&r.BurstAllowance, o.BurstAllowance)
	return r
}

func override[T any](dst *T, o *T) {
	if o != nil {
		*dst = *o
	}
}

// clone returns a copy that shares no pointer with o.
func (o RateLimitOverride) clone() RateLimitOverride {
	return RateLimitOverride{
		InitialRate: clonePtr(o.InitialRate), MaxRate: clonePtr(o.MaxRate), MinRate: clonePtr(o.MinRate),
		AdaptationFactor: clonePtr(o.AdaptationFactor), WindowSize: clonePtr(o.WindowSize), BurstAllowance: clonePtr(o.BurstAllowance),
	}
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// defaultUpstreamTimeout is an upstream's timeout, in seconds, when its
// table sets none.
const defaultUpstreamTimeout = 60

// NewUpstream returns an upstream at baseURL with the defaults a TOML table
// gets (cache "auto", timeout 60 s). Go code building a Config by hand
// should start from it: a zero Upstream does not validate.
func NewUpstream(baseURL string) Upstream {
	return Upstream{BaseURL: baseURL, Cache: "auto", Timeout: defaultUpstreamTimeout}
}

// EndpointURLs is the upstream's base URL followed by its extra endpoints.
func (u Upstream) EndpointURLs() []string {
	return append([]string{u.BaseURL}, u.Endpoints...)
}

// Default returns the built-in defaults: the values of SPEC §3.
func Default() *Config {
	return &Config{
		EnableAdvancedOptimization: true,
		EnableCollaboration:        true,
		DebugMode:                  false,
		Server: Server{
			Addr:         "127.0.0.1:8000",
			MaxBodyBytes: 10 << 20,
		},
		ConnectionPool: ConnectionPool{
			MaxConnections:     50,
			InitialConnections: 10,
			ConnectionTimeout:  30,
			IdleTimeout:        300,
			MaxRetries:         3,
		},
		BatchProcessing: BatchProcessing{
			BatchSize:       10,
			BatchTimeout:    1.5,
			MaxQueueSize:    1000,
			PriorityEnabled: true,
			AdaptiveSizing:  true,
		},
		Cache: Cache{
			L1Size:          1000,
			L2Size:          5000,
			L3Size:          10000,
			DefaultTTL:      3600,
			CleanupInterval: 300,
			EvictionPolicy:  "lru",
			L3Path:          "./data/cache",
			L3Backend:       "bolt",
		},
		RateLimit: RateLimit{
			InitialRate:      10,
			MaxRate:          100,
			MinRate:          1,
			AdaptationFactor: 1.2,
			WindowSize:       60,
			BurstAllowance:   20,
		},
		ErrorRecovery: ErrorRecovery{
			MaxRetries:              3,
			BaseDelay:               1,
			MaxDelay:                60,
			ExponentialBase:         2,
			CircuitBreakerThreshold: 5,
			FailureWindow:           10,
			FailureRateThreshold:    0.5,
			CircuitBreakerTimeout:   60,
			JitterEnabled:           true,
		},
		ParallelExecution: ParallelExecution{
			MaxWorkers:          20,
			QueueSize:           1000,
			PriorityLevels:      3,
			LoadBalancing:       true,
			WorkerTimeout:       300,
			HealthCheckInterval: 30,
		},
		Monitoring: Monitoring{
			MetricsEnabled:           true,
			DetailedLogging:          true,
			SlowRequestThreshold:     10,
			HighUtilizationThreshold: 0.8,
			MetricsRetention:         86400,
			ExportInterval:           60,
		},
		Upstreams: map[string]Upstream{},
	}
}
