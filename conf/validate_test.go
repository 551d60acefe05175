package conf

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultsValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default(): %v", err)
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid(): %v", err)
	}
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		key  string // "" when the edit must validate
		want string
	}{
		// server
		{"addr without port", func(c *Config) { c.Server.Addr = "127.0.0.1" }, "server.addr", `server.addr ("127.0.0.1") must be host:port`},
		{"addr bad port", func(c *Config) { c.Server.Addr = "127.0.0.1:http" }, "server.addr", "port number"},
		{"addr port too big", func(c *Config) { c.Server.Addr = "127.0.0.1:65536" }, "server.addr", "port number"},
		{"addr all interfaces", func(c *Config) { c.Server.Addr = ":8000" }, "", ""},
		{"addr ipv6", func(c *Config) { c.Server.Addr = "[::1]:0" }, "", ""},
		{"max_body_bytes", func(c *Config) { c.Server.MaxBodyBytes = 1023 }, "server.max_body_bytes", "server.max_body_bytes (1023) must be >= 1024"},
		{"max_body_bytes at minimum", func(c *Config) { c.Server.MaxBodyBytes = 1024 }, "", ""},
		{"admin_token placeholder", func(c *Config) { c.Server.AdminToken = RedactedValue }, "server.admin_token", "redaction placeholder"},
		{"admin_token space", func(c *Config) { c.Server.AdminToken = "a b" }, "server.admin_token", "printable ASCII"},

		// connection_pool
		{"max_connections 0", func(c *Config) { c.ConnectionPool.MaxConnections = 0 }, "connection_pool.max_connections", "connection_pool.max_connections (0) must be between 1 and 10000"},
		{"initial > max", func(c *Config) { c.ConnectionPool.InitialConnections = 20; c.ConnectionPool.MaxConnections = 10 },
			"connection_pool.initial_connections", "connection_pool.initial_connections (20) must be <= connection_pool.max_connections (10)"},
		{"initial == max", func(c *Config) { c.ConnectionPool.MaxConnections = 10 }, "", ""},
		{"initial 0", func(c *Config) { c.ConnectionPool.InitialConnections = 0 }, "", ""},
		{"initial negative", func(c *Config) { c.ConnectionPool.InitialConnections = -1 }, "connection_pool.initial_connections", "(-1) must be >= 0"},
		{"connection_timeout 0", func(c *Config) { c.ConnectionPool.ConnectionTimeout = 0 }, "connection_pool.connection_timeout", "connection_pool.connection_timeout (0) must be > 0"},
		{"idle_timeout negative", func(c *Config) { c.ConnectionPool.IdleTimeout = -1 }, "connection_pool.idle_timeout", "(-1) must be > 0"},
		{"pool max_retries negative", func(c *Config) { c.ConnectionPool.MaxRetries = -1 }, "connection_pool.max_retries", "(-1) must be between 0 and 100"},
		{"pool max_retries 0", func(c *Config) { c.ConnectionPool.MaxRetries = 0 }, "", ""},

		// batch_processing
		{"batch_size 0", func(c *Config) { c.BatchProcessing.BatchSize = 0 }, "batch_processing.batch_size", "(0) must be between 1"},
		{"batch_timeout 0", func(c *Config) { c.BatchProcessing.BatchTimeout = 0 }, "batch_processing.batch_timeout", "must be > 0"},
		{"max_queue_size 0", func(c *Config) { c.BatchProcessing.MaxQueueSize = 0 }, "batch_processing.max_queue_size", "(0) must be between 1"},

		// cache
		{"l1 0", func(c *Config) { c.Cache.L1Size = 0 }, "cache.l1_size", "cache.l1_size (0) must be between 1"},
		{"l2 0", func(c *Config) { c.Cache.L2Size = 0 }, "cache.l2_size", "(0)"},
		{"l3 0", func(c *Config) { c.Cache.L3Size = 0 }, "cache.l3_size", "(0)"},
		{"l3 huge", func(c *Config) { c.Cache.L3Size = 1 << 40 }, "cache.l3_size", "must be between 1 and 100000000"},
		{"ttl 0", func(c *Config) { c.Cache.DefaultTTL = 0 }, "cache.default_ttl", "must be > 0"},
		{"ttl too long", func(c *Config) { c.Cache.DefaultTTL = 1e300 }, "cache.default_ttl", "cache.default_ttl (1e+300) must be > 0 and <= 31536000 seconds"},
		{"cleanup 0", func(c *Config) { c.Cache.CleanupInterval = 0 }, "cache.cleanup_interval", "must be > 0"},
		{"eviction", func(c *Config) { c.Cache.EvictionPolicy = "LRU" }, "cache.eviction_policy", `cache.eviction_policy ("LRU") must be one of "lru", "lfu", "fifo"`},
		{"eviction fifo", func(c *Config) { c.Cache.EvictionPolicy = "fifo" }, "", ""},
		{"l3_path empty", func(c *Config) { c.Cache.L3Path = "" }, "cache.l3_path", "must not be empty"},

		// rate_limit
		{"min > max", func(c *Config) { c.RateLimit.MinRate = 5; c.RateLimit.MaxRate = 2; c.RateLimit.InitialRate = 3 },
			"rate_limit.min_rate", "rate_limit.min_rate (5) must be <= rate_limit.max_rate (2)"},
		{"initial < min", func(c *Config) { c.RateLimit.MinRate = 20 }, "rate_limit.min_rate", "rate_limit.min_rate (20) must be <= rate_limit.initial_rate (10)"},
		{"initial > max", func(c *Config) { c.RateLimit.InitialRate = 200 }, "rate_limit.initial_rate", "rate_limit.initial_rate (200) must be <= rate_limit.max_rate (100)"},
		{"all rates equal", func(c *Config) { c.RateLimit.MinRate, c.RateLimit.InitialRate, c.RateLimit.MaxRate = 7, 7, 7 }, "", ""},
		{"min_rate 0", func(c *Config) { c.RateLimit.MinRate = 0 }, "rate_limit.min_rate", "rate_limit.min_rate (0) must be > 0"},
		{"max_rate huge", func(c *Config) { c.RateLimit.MaxRate = 2e6 }, "rate_limit.max_rate", "requests/s"},
		{"adaptation_factor 1", func(c *Config) { c.RateLimit.AdaptationFactor = 1 }, "rate_limit.adaptation_factor", "rate_limit.adaptation_factor (1) must be > 1"},
		{"window 0", func(c *Config) { c.RateLimit.WindowSize = 0 }, "rate_limit.window_size", "must be > 0"},
		{"burst 0", func(c *Config) { c.RateLimit.BurstAllowance = 0 }, "rate_limit.burst_allowance", "(0) must be between 1"},

		// error_recovery
		{"retries negative", func(c *Config) { c.ErrorRecovery.MaxRetries = -1 }, "error_recovery.max_retries", "(-1) must be between 0 and 100"},
		{"retries 0", func(c *Config) { c.ErrorRecovery.MaxRetries = 0 }, "", ""},
		{"base_delay 0", func(c *Config) { c.ErrorRecovery.BaseDelay = 0 }, "error_recovery.base_delay", "must be > 0"},
		{"max_delay 0", func(c *Config) { c.ErrorRecovery.MaxDelay = 0 }, "error_recovery.max_delay", "must be > 0"},
		{"base > max delay", func(c *Config) { c.ErrorRecovery.BaseDelay = 120 }, "error_recovery.base_delay", "error_recovery.base_delay (120) must be <= error_recovery.max_delay (60)"},
		{"exponential_base < 1", func(c *Config) { c.ErrorRecovery.ExponentialBase = 0.5 }, "error_recovery.exponential_base", "error_recovery.exponential_base (0.5) must be >= 1"},
		{"exponential_base 1", func(c *Config) { c.ErrorRecovery.ExponentialBase = 1 }, "", ""},
		{"threshold 0", func(c *Config) { c.ErrorRecovery.CircuitBreakerThreshold = 0 }, "error_recovery.circuit_breaker_threshold", "(0) must be between 1"},
		{"breaker timeout 0", func(c *Config) { c.ErrorRecovery.CircuitBreakerTimeout = 0 }, "error_recovery.circuit_breaker_timeout", "must be > 0"},
		{"failure window 0", func(c *Config) { c.ErrorRecovery.FailureWindow = 0 }, "error_recovery.failure_window", "error_recovery.failure_window (0) must be > 0"},
		{"failure window negative", func(c *Config) { c.ErrorRecovery.FailureWindow = -1 }, "error_recovery.failure_window", "(-1) must be > 0"},
		{"failure window small", func(c *Config) { c.ErrorRecovery.FailureWindow = 0.05 }, "", ""},
		{"failure rate 0", func(c *Config) { c.ErrorRecovery.FailureRateThreshold = 0 }, "error_recovery.failure_rate_threshold", "error_recovery.failure_rate_threshold (0) must be > 0 and <= 1"},
		{"failure rate above 1", func(c *Config) { c.ErrorRecovery.FailureRateThreshold = 1.5 }, "error_recovery.failure_rate_threshold", "(1.5) must be > 0 and <= 1"},
		{"failure rate NaN", func(c *Config) { c.ErrorRecovery.FailureRateThreshold = math.NaN() }, "error_recovery.failure_rate_threshold", "must be a finite number"},
		{"failure rate 1", func(c *Config) { c.ErrorRecovery.FailureRateThreshold = 1 }, "", ""},

		// parallel_execution
		{"workers 0", func(c *Config) { c.ParallelExecution.MaxWorkers = 0 }, "parallel_execution.max_workers", "parallel_execution.max_workers (0) must be between 1 and 10000"},
		{"workers 10001", func(c *Config) { c.ParallelExecution.MaxWorkers = 10001 }, "parallel_execution.max_workers", "(10001) must be between 1 and 10000"},
		{"workers 10000", func(c *Config) { c.ParallelExecution.MaxWorkers = 10000 }, "", ""},
		{"queue 0", func(c *Config) { c.ParallelExecution.QueueSize = 0 }, "parallel_execution.queue_size", "(0) must be between 1"},
		{"priorities 0", func(c *Config) { c.ParallelExecution.PriorityLevels = 0 }, "parallel_execution.priority_levels", "(0) must be between 1 and 16"},
		{"priorities 17", func(c *Config) { c.ParallelExecution.PriorityLevels = 17 }, "parallel_execution.priority_levels", "(17) must be between 1 and 16"},
		{"priorities 16", func(c *Config) { c.ParallelExecution.PriorityLevels = 16 }, "", ""},
		{"worker_timeout 0", func(c *Config) { c.ParallelExecution.WorkerTimeout = 0 }, "parallel_execution.worker_timeout", "must be > 0"},
		{"health 0", func(c *Config) { c.ParallelExecution.HealthCheckInterval = 0 }, "parallel_execution.health_check_interval", "must be > 0"},

		// monitoring
		{"slow 0", func(c *Config) { c.Monitoring.SlowRequestThreshold = 0 }, "monitoring.slow_request_threshold", "must be > 0"},
		{"utilization 0", func(c *Config) { c.Monitoring.HighUtilizationThreshold = 0 }, "monitoring.high_utilization_threshold", "(0) must be > 0 and <= 1"},
		{"utilization 1.5", func(c *Config) { c.Monitoring.HighUtilizationThreshold = 1.5 }, "monitoring.high_utilization_threshold", "(1.5) must be > 0 and <= 1"},
		{"utilization 1", func(c *Config) { c.Monitoring.HighUtilizationThreshold = 1 }, "", ""},
		{"retention < export", func(c *Config) { c.Monitoring.MetricsRetention = 30 }, "monitoring.metrics_retention",
			"monitoring.metrics_retention (30) must be >= monitoring.export_interval (60)"},
		{"retention == export", func(c *Config) { c.Monitoring.MetricsRetention = 60 }, "", ""},
		{"export 0", func(c *Config) { c.Monitoring.ExportInterval = 0 }, "monitoring.export_interval", "must be > 0"},
		{"push_url ftp", func(c *Config) { c.Monitoring.PushURL = "ftp://x/y" }, "monitoring.push_url", "must be an absolute http:// or https:// URL"},
		{"push_url relative", func(c *Config) { c.Monitoring.PushURL = "/metrics" }, "monitoring.push_url", "absolute"},
		{"push_url credentials", func(c *Config) { c.Monitoring.PushURL = "https://u:p@push.example/x" }, "monitoring.push_url", "credentials"},
		{"push_url with query", func(c *Config) { c.Monitoring.PushURL = "https://vm.example/api/v1/import/prometheus?extra_label=a=b" }, "", ""},

		// upstreams
		{"upstream name", func(c *Config) { c.Upstreams["Open AI"] = NewUpstream("https://x.example") }, `upstreams.Open AI`, "must match [a-z0-9_-]+"},
		{"base_url missing", func(c *Config) { c.Upstreams["b"] = NewUpstream("") }, "upstreams.b.base_url", "upstreams.b.base_url must be set"},
		{"base_url relative", func(c *Config) { c.Upstreams["b"] = NewUpstream("api.example.com") }, "upstreams.b.base_url", "absolute http"},
		{"base_url query", func(c *Config) { c.Upstreams["b"] = NewUpstream("https://api.example.com/?k=1") }, "upstreams.b.base_url", "?query"},
		{"base_url with path", func(c *Config) { c.Upstreams["b"] = NewUpstream("https://api.example.com/openai/") }, "", ""},
		{"builtin https", func(c *Config) { u := NewUpstream("https://127.0.0.1:8001"); u.Builtin = true; c.Upstreams["b"] = u }, "upstreams.b.base_url", "builtin"},
		{"endpoint", func(c *Config) {
			u := c.Upstreams["sim"]
			u.Endpoints = []string{"http://127.0.0.1:8002", "127.0.0.1:8003"}
			c.Upstreams["sim"] = u
		}, "upstreams.sim.endpoints[1]", "upstreams.sim.endpoints[1] (\"127.0.0.1:8003\")"},
		{"cache", func(c *Config) { u := c.Upstreams["sim"]; u.Cache = "sometimes"; c.Upstreams["sim"] = u }, "upstreams.sim.cache", `upstreams.sim.cache ("sometimes") must be one of "auto", "always", "never"`},
		{"cache empty", func(c *Config) { u := c.Upstreams["sim"]; u.Cache = ""; c.Upstreams["sim"] = u }, "upstreams.sim.cache", `("")`},
		{"batch", func(c *Config) { u := c.Upstreams["sim"]; u.Batch = "anthropic"; c.Upstreams["sim"] = u }, "upstreams.sim.batch", `must be one of "", "openai-embeddings"`},
		{"timeout 0", func(c *Config) { u := c.Upstreams["sim"]; u.Timeout = 0; c.Upstreams["sim"] = u }, "upstreams.sim.timeout", "upstreams.sim.timeout (0) must be > 0"},
		{"api_key_env", func(c *Config) { u := c.Upstreams["sim"]; u.APIKeyEnv = "OPENAI-KEY"; c.Upstreams["sim"] = u }, "upstreams.sim.api_key_env", "not an environment variable name"},
		{"empty model", func(c *Config) { u := c.Upstreams["sim"]; u.Models = []string{""}; c.Upstreams["sim"] = u }, "upstreams.sim.models", "invalid model name"},
		{"model on two upstreams", func(c *Config) {
			u := NewUpstream("https://api.example.com")
			u.Models = []string{"x", "sim-model"}
			c.Upstreams["z"] = u
		}, "upstreams.z.models", `model "sim-model" is already routed to upstream "sim"`},
		{"model twice on one upstream", func(c *Config) { u := c.Upstreams["sim"]; u.Models = []string{"a", "a"}; c.Upstreams["sim"] = u }, "", ""},
		{"default_upstream unknown", func(c *Config) { c.DefaultUpstream = "nope" }, "default_upstream", `default_upstream ("nope") is not a configured upstream (configured: sim)`},
		{"default_upstream empty", func(c *Config) { c.DefaultUpstream = "" }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.edit(c)
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			wantProblem(t, err, tt.key, tt.want)
		})
	}
}

// TestValidateRejectsNonFinite sets every float, in turn, to NaN and ±Inf.
func TestValidateRejectsNonFinite(t *testing.T) {
	floats := 0
	for _, f := range fields {
		if f.kind != reflect.Float64 {
			continue
		}
		floats++
		for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			c := valid()
			f.in(c).SetFloat(x)
			wantProblem(t, c.Validate(), f.key, "must be a finite number")
		}
	}
	if floats == 0 {
		t.Fatal("no float settings found in fields: the loop above checked nothing")
	}
	c := valid()
	u := c.Upstreams["sim"]
	u.Timeout = math.NaN()
	c.Upstreams["sim"] = u
	wantProblem(t, c.Validate(), "upstreams.sim.timeout", "(NaN) must be a finite number")
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := valid()
	c.ParallelExecution.MaxWorkers = 0
	c.Cache.L1Size = 0
	c.RateLimit.MinRate = 500
	err := c.Validate()
	fe := fieldErrors(t, err)
	if len(fe) != 3 {
		t.Fatalf("got %d problems, want 3: %v", len(fe), err)
	}
	if !strings.Contains(err.Error(), "; ") {
		t.Errorf("Error() = %q does not join the problems", err)
	}
}

func TestClusterKeys(t *testing.T) {
	for _, tc := range []struct {
		url, backend, want string // want: "" valid, else a fragment of the message
	}{
		{"", "bolt", ""},
		{"redis://127.0.0.1:6379", "bolt", ""},
		{"redis://:secret@10.0.0.5:6380/3", "redis", ""},
		{"rediss://user:secret@redis.internal", "redis", ""},
		{"", "redis", `cache.l3_backend "redis" needs cluster.redis_url`},
		{"", "memcached", `cache.l3_backend ("memcached") must be one of "bolt", "redis"`},
		{"http://127.0.0.1:6379", "bolt", "must start with redis:// or rediss://"},
		{"127.0.0.1:6379", "bolt", "must be a URL like redis://"},
		{"redis://", "bolt", "must name a host"},
		{"redis://127.0.0.1:99999", "bolt", "invalid port"},
		{"redis://127.0.0.1:6379/16", "bolt", "database number, 0-15"},
		{"redis://:hunter2@127.0.0.1:6379/x", "bolt", "<redacted>"},
	} {
		c := Default()
		c.Cluster.RedisURL, c.Cache.L3Backend = tc.url, tc.backend
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q/%q: %v", tc.url, tc.backend, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q/%q: error %v, want it to contain %q", tc.url, tc.backend, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%q: the error shows the password: %v", tc.url, err)
		}
	}
}

func TestRedisURLRedactedAndPatchedBack(t *testing.T) {
	c := Default()
	c.Cluster.RedisURL = "redis://deer:hunter2@127.0.0.1:6379/1"
	shown := c.Redacted().Cluster.RedisURL
	if shown != "redis://deer:<redacted>@127.0.0.1:6379/1" {
		t.Fatalf("redacted redis_url = %q", shown)
	}
	if c.Cluster.RedisURL != "redis://deer:hunter2@127.0.0.1:6379/1" {
		t.Fatal("Redacted changed the original")
	}
	next, err := c.Patch([]byte(`{"cluster": {"redis_url": "` + shown + `"}}`))
	if err != nil {
		t.Fatalf("posting the redacted URL back: %v", err)
	}
	if next.Cluster.RedisURL != c.Cluster.RedisURL {
		t.Errorf("after patch redis_url = %q", next.Cluster.RedisURL)
	}
	if _, err := c.Patch([]byte(`{"cluster": {"redis_url": "redis://127.0.0.1:6390"}}`)); err == nil || !strings.Contains(err.Error(), "cluster.redis_url") {
		t.Errorf("changing redis_url live: %v, want a restart error naming cluster.redis_url", err)
	}
}
