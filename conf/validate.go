package conf

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits beyond which a value is a typo rather than a setting. They also
// keep POST /config from sizing a queue or cache past what memory holds, and
// durations within what time.Duration can represent.
const (
	maxSeconds     = 365 * 24 * 3600 // any duration
	maxRate        = 1e6             // requests per second
	maxConnections = 10000
	maxBatch       = 10000
	maxWorkers     = 10000
	maxPriorities  = 16
	maxQueue       = 10_000_000
	maxCacheSize   = 100_000_000
	maxRetries     = 100
	minBodyBytes   = 1024
)

var (
	upstreamNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	envNameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate checks every range and cross-field rule and returns all
// problems as FieldErrors, or nil. Messages name keys and values:
// `rate_limit.min_rate (5) must be <= rate_limit.max_rate (2)`.
func (c *Config) Validate() error {
	return c.validate().orNil()
}

func (c *Config) validate() FieldErrors {
	var v checker

	s := c.Server
	v.addr("server.addr", s.Addr)
	if s.AdminToken == RedactedValue {
		v.add("server.admin_token", "", "server.admin_token is the redaction placeholder %q: set the real token (DEER_ADMIN_TOKEN keeps it out of files)", RedactedValue)
	} else if strings.ContainsFunc(s.AdminToken, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		v.add("server.admin_token", "", "server.admin_token must be printable ASCII without spaces: it is sent in an Authorization header")
	}
	v.atLeast("server.max_body_bytes", s.MaxBodyBytes, minBodyBytes)

	p := c.ConnectionPool
	v.between("connection_pool.max_connections", int64(p.MaxConnections), 1, maxConnections)
	v.atLeast("connection_pool.initial_connections", int64(p.InitialConnections), 0)
	v.notAbove("connection_pool.initial_connections", float64(p.InitialConnections), "connection_pool.max_connections", float64(p.MaxConnections))
	v.seconds("connection_pool.connection_timeout", p.ConnectionTimeout)
	v.seconds("connection_pool.idle_timeout", p.IdleTimeout)
	v.between("connection_pool.max_retries", int64(p.MaxRetries), 0, maxRetries)

	b := c.BatchProcessing
	v.between("batch_processing.batch_size", int64(b.BatchSize), 1, maxBatch)
	v.seconds("batch_processing.batch_timeout", b.BatchTimeout)
	v.between("batch_processing.max_queue_size", int64(b.MaxQueueSize), 1, maxQueue)

	ca := c.Cache
	v.between("cache.l1_size", int64(ca.L1Size), 1, maxCacheSize)
	v.between("cache.l2_size", int64(ca.L2Size), 1, maxCacheSize)
	v.between("cache.l3_size", int64(ca.L3Size), 1, maxCacheSize)
	v.seconds("cache.default_ttl", ca.DefaultTTL)
	v.seconds("cache.cleanup_interval", ca.CleanupInterval)
	v.oneOf("cache.eviction_policy", ca.EvictionPolicy, "lru", "lfu", "fifo")
	if ca.L3Path == "" {
		v.add("cache.l3_path", "", "cache.l3_path must not be empty")
	} else if !isText(ca.L3Path) {
		v.add("cache.l3_path", "", "cache.l3_path %q must be UTF-8 without control characters", ca.L3Path)
	}

	v.oneOf("cache.l3_backend", ca.L3Backend, "bolt", "redis")
	if c.Cluster.RedisURL != "" {
		v.redisURL("cluster.redis_url", c.Cluster.RedisURL)
	} else if ca.L3Backend == "redis" {
		v.add("cache.l3_backend", "cluster.redis_url", `cache.l3_backend "redis" needs cluster.redis_url (DEER_REDIS_URL): the L3 entries live in that Redis`)
	}

	v.rateLimit(c.RateLimit, func(k string) string { return "rate_limit." + k })

	e := c.ErrorRecovery
	v.between("error_recovery.max_retries", int64(e.MaxRetries), 0, maxRetries)
	v.seconds("error_recovery.base_delay", e.BaseDelay)
	v.seconds("error_recovery.max_delay", e.MaxDelay)
	v.notAbove("error_recovery.base_delay", e.BaseDelay, "error_recovery.max_delay", e.MaxDelay)
	if v.finite("error_recovery.exponential_base", e.ExponentialBase) && e.ExponentialBase < 1 {
		v.add("error_recovery.exponential_base", "", "error_recovery.exponential_base (%s) must be >= 1", num(e.ExponentialBase))
	}
	v.between("error_recovery.circuit_breaker_threshold", int64(e.CircuitBreakerThreshold), 1, maxQueue)
	v.seconds("error_recovery.failure_window", e.FailureWindow)
	if r := e.FailureRateThreshold; v.finite("error_recovery.failure_rate_threshold", r) && (r <= 0 || r > 1) {
		v.add("error_recovery.failure_rate_threshold", "", "error_recovery.failure_rate_threshold (%s) must be > 0 and <= 1", num(r))
	}
	v.seconds("error_recovery.circuit_breaker_timeout", e.CircuitBreakerTimeout)

	x := c.ParallelExecution
	v.between("parallel_execution.max_workers", int64(x.MaxWorkers), 1, maxWorkers)
	v.between("parallel_execution.queue_size", int64(x.QueueSize), 1, maxQueue)
	v.between("parallel_execution.priority_levels", int64(x.PriorityLevels), 1, maxPriorities)
	v.seconds("parallel_execution.worker_timeout", x.WorkerTimeout)
	v.seconds("parallel_execution.health_check_interval", x.HealthCheckInterval)

	m := c.Monitoring
	v.seconds("monitoring.slow_request_threshold", m.SlowRequestThreshold)
	if h := m.HighUtilizationThreshold; v.finite("monitoring.high_utilization_threshold", h) && (h <= 0 || h > 1) {
		v.add("monitoring.high_utilization_threshold", "", "monitoring.high_utilization_threshold (%s) must be > 0 and <= 1", num(h))
	}
	v.seconds("monitoring.metrics_retention", m.MetricsRetention)
	v.seconds("monitoring.export_interval", m.ExportInterval)
	if m.MetricsRetention < m.ExportInterval {
		v.add("monitoring.metrics_retention", "monitoring.export_interval",
			"monitoring.metrics_retention (%s) must be >= monitoring.export_interval (%s)", num(m.MetricsRetention), num(m.ExportInterval))
	}
	if m.PushURL != "" {
		v.url("monitoring.push_url", m.PushURL, true)
	}

	v.upstreams(c)
	return v.errs
}

// rateLimit checks one set of rate_limit values, naming the key of each
// as name says.
func (v *checker) rateLimit(r RateLimit, name func(string) string) {
	initial, maxR, minR := name("initial_rate"), name("max_rate"), name("min_rate")
	v.rate(initial, r.InitialRate)
	v.rate(maxR, r.MaxRate)
	v.rate(minR, r.MinRate)
	// min <= max first: when it fails, initial cannot be placed and a
	// second message would only repeat the first.
	if !v.notAbove(minR, r.MinRate, maxR, r.MaxRate) {
		v.notAbove(minR, r.MinRate, initial, r.InitialRate)
		v.notAbove(initial, r.InitialRate, maxR, r.MaxRate)
	}
	if f := name("adaptation_factor"); v.finite(f, r.AdaptationFactor) && r.AdaptationFactor <= 1 {
		v.add(f, "", "%s (%s) must be > 1", f, num(r.AdaptationFactor))
	}
	v.seconds(name("window_size"), r.WindowSize)
	v.between(name("burst_allowance"), int64(r.BurstAllowance), 1, maxQueue)
}

// upstreamRateLimit checks the rate limits upstream name runs on (see
// Config.RateLimitFor). Each value is named by the key it comes from —
// upstreams.NAME.rate_limit.max_rate, or rate_limit.initial_rate when the
// upstream does not set it — and only problems involving one of the
// upstream's own keys are reported, under that key: the others are the
// top-level table's, reported once already.
func (v *checker) upstreamRateLimit(c *Config, name, key string) {
	own := key + ".rate_limit."
	set := map[string]bool{}
	o := reflect.ValueOf(c.Upstreams[name].RateLimit)
	for i := range o.NumField() {
		set[tagName(o.Type().Field(i))] = !o.Field(i).IsNil()
	}
	var sub checker
	sub.rateLimit(c.RateLimitFor(name), func(k string) string {
		if set[k] {
			return own + k
		}
		return "rate_limit." + k
	})
	for _, e := range sub.errs {
		if !strings.HasPrefix(e.Key, own) {
			if !strings.HasPrefix(e.other, own) {
				continue
			}
			e.Key, e.other = e.other, e.Key
		}
		v.errs = append(v.errs, e)
	}
}

func (v *checker) upstreams(c *Config) {
	names := make([]string, 0, len(c.Upstreams))
	for name := range c.Upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	owner := map[string]string{} // model → first upstream listing it
	for _, name := range names {
		u := c.Upstreams[name]
		key := "upstreams." + name
		if !upstreamNameRE.MatchString(name) {
			v.add(key, "", "upstream name %q must match [a-z0-9_-]+: it appears in actor names and URLs", name)
			key = fmt.Sprintf("upstreams.%q", name)
		}
		if base := v.url(key+".base_url", u.BaseURL, false); base != nil && u.Builtin && base.Scheme != "http" {
			v.add(key+".base_url", "", "%s.base_url (%q) must be http:// when builtin = true: deerd serves the simulator there", key, u.BaseURL)
		}
		for i, ep := range u.Endpoints {
			v.url(fmt.Sprintf("%s.endpoints[%d]", key, i), ep, false)
		}
		v.oneOf(key+".cache", u.Cache, "auto", "always", "never")
		v.oneOf(key+".batch", u.Batch, "", "openai-embeddings")
		v.seconds(key+".timeout", u.Timeout)
		if u.RateLimit != (RateLimitOverride{}) {
			v.upstreamRateLimit(c, name, key)
		}
		if u.APIKeyEnv != "" && !envNameRE.MatchString(u.APIKeyEnv) {
			v.add(key+".api_key_env", "", "%s.api_key_env (%q) is not an environment variable name", key, u.APIKeyEnv)
		}
		for _, model := range slices.Compact(slices.Sorted(slices.Values(u.Models))) {
			switch first, dup := owner[model]; {
			case model == "" || !isText(model):
				v.add(key+".models", "", "%s.models has an invalid model name %q", key, model)
			case dup:
				v.add(key+".models", "", "%s.models: model %q is already routed to upstream %q", key, model, first)
			default:
				owner[model] = name
			}
		}
	}
	if d := c.DefaultUpstream; d != "" {
		if _, ok := c.Upstreams[d]; !ok {
			v.add("default_upstream", "", "default_upstream (%q) is not a configured upstream (configured: %s)", d, strings.Join(names, ", "))
		}
	}
}

// checker accumulates FieldErrors; each method checks one rule.
type checker struct{ errs FieldErrors }

func (v *checker) add(key, other, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Key: key, other: other, Reason: fmt.Sprintf(format, args...)})
}

func (v *checker) atLeast(key string, n, lo int64) {
	if n < lo {
		v.add(key, "", "%s (%d) must be >= %d", key, n, lo)
	}
}

func (v *checker) between(key string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.add(key, "", "%s (%d) must be between %d and %d", key, n, lo, hi)
	}
}

// notAbove checks a <= b, reporting a failure under key a. It returns
// whether it failed. NaN never fails here: finite reports it.
func (v *checker) notAbove(a string, x float64, b string, y float64) (failed bool) {
	if x > y {
		v.add(a, b, "%s (%s) must be <= %s (%s)", a, num(x), b, num(y))
		return true
	}
	return false
}

func (v *checker) finite(key string, f float64) bool {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		v.add(key, "", "%s (%s) must be a finite number", key, num(f))
		return false
	}
	return true
}

func (v *checker) seconds(key string, f float64) {
	if v.finite(key, f) && (f <= 0 || f > maxSeconds) {
		v.add(key, "", "%s (%s) must be > 0 and <= %d seconds (365 days)", key, num(f), maxSeconds)
	}
}

func (v *checker) rate(key string, f float64) {
	if v.finite(key, f) && (f <= 0 || f > maxRate) {
		v.add(key, "", "%s (%s) must be > 0 and <= %s requests/s", key, num(f), num(maxRate))
	}
}

func (v *checker) oneOf(key, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		quoted := make([]string, len(allowed))
		for i, a := range allowed {
			quoted[i] = strconv.Quote(a)
		}
		v.add(key, "", "%s (%q) must be one of %s", key, s, strings.Join(quoted, ", "))
	}
}

// redisURL checks a Redis URL as go-redis's ParseURL takes it:
// redis:// or rediss:// with a host, an optional numeric database and no
// fragment. (conf does not import the client: this is the subset deer
// documents.)
func (v *checker) redisURL(key, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil || !isText(s):
		v.add(key, "", "%s must be a URL like redis://127.0.0.1:6379/0", key)
	case u.Scheme != "redis" && u.Scheme != "rediss":
		v.add(key, "", "%s (%q) must start with redis:// or rediss://", key, redactURL(s))
	case u.Host == "" || u.Hostname() == "":
		v.add(key, "", "%s (%q) must name a host, like redis://127.0.0.1:6379", key, redactURL(s))
	case u.Fragment != "":
		v.add(key, "", "%s (%q) must not have a #fragment", key, redactURL(s))
	default:
		if p := u.Port(); p != "" {
			if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
				v.add(key, "", "%s (%q) has an invalid port %q", key, redactURL(s), p)
				return
			}
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			if n, err := strconv.ParseUint(db, 10, 8); err != nil || n > 15 {
				v.add(key, "", "%s (%q): the path is the database number, 0-15, not %q", key, redactURL(s), db)
			}
		}
	}
}

// addr checks a listen address: host (may be empty: all interfaces) and a
// numeric port (0 picks a free one).
func (v *checker) addr(key, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || !isText(host) || strings.ContainsAny(host, " /") {
		v.add(key, "", "%s (%q) must be host:port, like 127.0.0.1:8000", key, s)
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		v.add(key, "", "%s (%q) must end in a port number between 0 and 65535", key, s)
	}
}

// url checks an absolute http(s) URL. Credentials are refused because GET
// /config shows URLs as they are; a query is allowed only where the
// receiver takes one (push_url), since upstream paths are appended to base
// URLs.
func (v *checker) url(key, s string, query bool) *url.URL {
	u, err := url.Parse(s)
	switch {
	case s == "":
		v.add(key, "", "%s must be set to an http:// or https:// URL", key)
	case err != nil || !isText(s) || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		v.add(key, "", "%s (%q) must be an absolute http:// or https:// URL", key, s)
	case u.User != nil:
		v.add(key, "", "%s (%q) must not contain credentials: GET /config shows it", key, s)
	case u.Fragment != "" || u.RawFragment != "" || strings.Contains(s, "#"):
		v.add(key, "", "%s (%q) must not have a #fragment", key, s)
	case !query && (u.RawQuery != "" || u.ForceQuery):
		v.add(key, "", "%s (%q) must not have a ?query: request paths are appended to it", key, s)
	default:
		return u
	}
	return nil
}

// isText reports whether s is UTF-8 without control characters, so it
// prints, logs and round-trips through TOML and JSON unchanged.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// num formats a float as a user wrote it: 5, 0.8, 86400, 1e+300.
func num(f float64) string {
	if a := math.Abs(f); a == 0 || a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// withSource names the env var behind each problem's keys.
func (es FieldErrors) withSource(src Source) FieldErrors {
	for i := range es {
		if es[i].Env == "" {
			es[i].Env = src.Env(es[i].Key)
		}
		if es[i].Env == "" && es[i].other != "" {
			es[i].Env = src.Env(es[i].other)
		}
	}
	return es
}
