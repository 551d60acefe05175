package conf

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// EnvVar maps one DEER_* environment variable to the key it sets.
type EnvVar struct {
	Name string // "DEER_MAX_WORKERS"
	Key  string // "parallel_execution.max_workers"
}

// envVars are the names of SPEC §3 (the reference guide's names, kept for
// compatibility, hence DEER_CACHE_TTL rather than DEER_DEFAULT_TTL) plus
// one for each key the guide did not have.
var envVars = []EnvVar{
	{"DEER_ADVANCED_OPTIMIZATION", "enable_advanced_optimization"},
	{"DEER_COLLABORATION", "enable_collaboration"},
	{"DEER_DEBUG_MODE", "debug_mode"},
	{"DEER_DEFAULT_UPSTREAM", "default_upstream"},

	{"DEER_HTTP_ADDR", "server.addr"},
	{"DEER_ADMIN_TOKEN", "server.admin_token"},
	{"DEER_MAX_BODY_BYTES", "server.max_body_bytes"},
	{"DEER_FAULT_INJECTION", "server.fault_injection"},

	{"DEER_MAX_CONNECTIONS", "connection_pool.max_connections"},
	{"DEER_INITIAL_CONNECTIONS", "connection_pool.initial_connections"},
	{"DEER_CONNECTION_TIMEOUT", "connection_pool.connection_timeout"},
	{"DEER_IDLE_TIMEOUT", "connection_pool.idle_timeout"},
	{"DEER_CONNECTION_RETRIES", "connection_pool.max_retries"},

	{"DEER_BATCH_SIZE", "batch_processing.batch_size"},
	{"DEER_BATCH_TIMEOUT", "batch_processing.batch_timeout"},
	{"DEER_MAX_QUEUE_SIZE", "batch_processing.max_queue_size"},
	{"DEER_PRIORITY_ENABLED", "batch_processing.priority_enabled"},
	{"DEER_ADAPTIVE_SIZING", "batch_processing.adaptive_sizing"},

	{"DEER_L1_CACHE_SIZE", "cache.l1_size"},
	{"DEER_L2_CACHE_SIZE", "cache.l2_size"},
	{"DEER_L3_CACHE_SIZE", "cache.l3_size"},
	{"DEER_CACHE_TTL", "cache.default_ttl"},
	{"DEER_CACHE_CLEANUP_INTERVAL", "cache.cleanup_interval"},
	{"DEER_CACHE_EVICTION_POLICY", "cache.eviction_policy"},
	{"DEER_L3_PATH", "cache.l3_path"},
	{"DEER_CACHE_SHARE_ACROSS_KEYS", "cache.share_across_keys"},
	{"DEER_L3_BACKEND", "cache.l3_backend"},

	{"DEER_INITIAL_RATE", "rate_limit.initial_rate"},
	{"DEER_MAX_RATE", "rate_limit.max_rate"},
	{"DEER_MIN_RATE", "rate_limit.min_rate"},
	{"DEER_ADAPTATION_FACTOR", "rate_limit.adaptation_factor"},
	{"DEER_RATE_WINDOW_SIZE", "rate_limit.window_size"},
	{"DEER_BURST_ALLOWANCE", "rate_limit.burst_allowance"},

	{"DEER_MAX_RETRIES", "error_recovery.max_retries"},
	{"DEER_BASE_DELAY", "error_recovery.base_delay"},
	{"DEER_MAX_DELAY", "error_recovery.max_delay"},
	{"DEER_EXPONENTIAL_BASE", "error_recovery.exponential_base"},
	{"DEER_CIRCUIT_THRESHOLD", "error_recovery.circuit_breaker_threshold"},
	{"DEER_FAILURE_WINDOW", "error_recovery.failure_window"},
	{"DEER_FAILURE_RATE_THRESHOLD", "error_recovery.failure_rate_threshold"},
	{"DEER_CIRCUIT_TIMEOUT", "error_recovery.circuit_breaker_timeout"},
	{"DEER_JITTER_ENABLED", "error_recovery.jitter_enabled"},

	{"DEER_MAX_WORKERS", "parallel_execution.max_workers"},
	{"DEER_PARALLEL_QUEUE_SIZE", "parallel_execution.queue_size"},
	{"DEER_PRIORITY_LEVELS", "parallel_execution.priority_levels"},
	{"DEER_LOAD_BALANCING", "parallel_execution.load_balancing"},
	{"DEER_WORKER_TIMEOUT", "parallel_execution.worker_timeout"},
	{"DEER_HEALTH_CHECK_INTERVAL", "parallel_execution.health_check_interval"},

	{"DEER_METRICS_ENABLED", "monitoring.metrics_enabled"},
	{"DEER_DETAILED_LOGGING", "monitoring.detailed_logging"},
	{"DEER_SLOW_REQUEST_THRESHOLD", "monitoring.slow_request_threshold"},
	{"DEER_HIGH_UTILIZATION_THRESHOLD", "monitoring.high_utilization_threshold"},
	{"DEER_METRICS_RETENTION", "monitoring.metrics_retention"},
	{"DEER_EXPORT_INTERVAL", "monitoring.export_interval"},
	{"DEER_PUSH_URL", "monitoring.push_url"},

	{"DEER_REDIS_URL", "cluster.redis_url"},
}

// EnvVars returns every DEER_* variable deer reads and the key it sets.
func EnvVars() []EnvVar {
	return append([]EnvVar(nil), envVars...)
}

// EnvFor returns the DEER_* variable that sets key, or "".
func EnvFor(key string) string {
	for _, e := range envVars {
		if e.Key == key {
			return e.Name
		}
	}
	return ""
}

// applyEnv sets every key whose variable lookup finds, recording the
// variable in src. It parses all of them before reporting, so one run of
// deerd --check-config shows every bad variable.
func applyEnv(c *Config, src Source, lookup func(string) (string, bool)) error {
	var errs FieldErrors
	for _, e := range envVars {
		raw, ok := lookup(e.Name)
		if !ok {
			continue
		}
		f := fieldsByKey[e.Key]
		if reason := setFromString(f.in(c), raw); reason != "" {
			errs = append(errs, FieldError{
				Key:    e.Key,
				Env:    e.Name,
				Reason: fmt.Sprintf("%s (%s): %q %s", e.Name, e.Key, raw, reason),
			})
			continue
		}
		src[e.Key] = "env " + e.Name
	}
	return errs.orNil()
}

// setFromString parses raw into v by v's kind, returning why it cannot.
// Strings are taken as they are (an empty DEER_ADMIN_TOKEN clears the
// token); other kinds ignore surrounding blanks, which .env files and
// YAML block scalars tend to leave behind.
func setFromString(v reflect.Value, raw string) (reason string) {
	if v.Kind() == reflect.String {
		v.SetString(raw)
		return ""
	}
	s := strings.TrimSpace(raw)
	switch v.Kind() {
	case reflect.Bool:
		b, ok := parseBool(s)
		if !ok {
			return "is not a boolean (use true/false, 1/0, yes/no or on/off)"
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange), err == nil && v.OverflowInt(n):
			return "is out of range"
		case err != nil:
			return "is not an integer"
		}
		v.SetInt(n)
	case reflect.Float64:
		f, reason := parseDecimal(s)
		if reason != "" {
			return reason
		}
		v.SetFloat(f)
	default:
		panic("conf: no env parser for " + v.Kind().String())
	}
	return ""
}

func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// parseDecimal accepts plain decimal numbers ("1.5", "60", "2e3") and
// rejects what strconv.ParseFloat would also take but no one means in a
// setting: "NaN", "Inf", hex floats and digit separators.
func parseDecimal(s string) (float64, string) {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return !strings.ContainsRune("0123456789+-.eE", r)
	}) {
		return 0, "is not a decimal number"
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, "is out of range"
	case err != nil:
		return 0, "is not a decimal number"
	}
	return f, ""
}

// otherEnv are DEER_* variables that deer's own tools read but that are
// not settings, so they are not reported as unknown.
var otherEnv = []string{
	"DEER_BASE_URL", // scripts/compat: the gateway URL an OpenAI client check calls
}

// unknownEnv returns a warning for each DEER_* variable in environ
// (os.Environ's NAME=VALUE form) that deer does not read: most likely a
// typo that would otherwise be ignored silently. An upstream's
// api_key_env may name a DEER_* variable; c's are known too.
func unknownEnv(environ []string, c *Config) FieldErrors {
	known := map[string]bool{}
	for _, e := range envVars {
		known[e.Name] = true
	}
	for _, name := range otherEnv {
		known[name] = true
	}
	for _, u := range c.Upstreams {
		known[u.APIKeyEnv] = true
	}
	var warnings FieldErrors
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "DEER_") || known[name] {
			continue
		}
		known[name] = true // listed twice in environ: warn once
		reason := "unknown variable " + name + " is ignored"
		if s := suggestEnv(name); s != "" {
			reason += " (did you mean " + s + "?)"
		}
		warnings = append(warnings, FieldError{Env: name, Reason: reason})
	}
	return warnings
}

// envAliases maps names someone might guess for a variable to its real
// name: each real name; DEER_ and the key in capitals
// (DEER_PARALLEL_EXECUTION_MAX_WORKERS); and DEER_ and the key's last part
// when no other key ends so (DEER_DEFAULT_TTL for DEER_CACHE_TTL).
var envAliases = func() map[string]string {
	alias := func(s string) string { return "DEER_" + strings.ToUpper(strings.ReplaceAll(s, ".", "_")) }
	m, lasts := map[string]string{}, map[string]int{}
	for _, e := range envVars {
		lasts[e.Key[strings.LastIndex(e.Key, ".")+1:]]++
	}
	for _, e := range envVars {
		m[e.Name], m[alias(e.Key)] = e.Name, e.Name
		if last := e.Key[strings.LastIndex(e.Key, ".")+1:]; lasts[last] == 1 {
			if _, taken := m[alias(last)]; !taken {
				m[alias(last)] = e.Name
			}
		}
	}
	return m
}()

// suggestEnv returns the variable an unknown DEER_* name most likely
// meant, or "".
func suggestEnv(name string) string {
	names := make([]string, 0, len(envAliases))
	for a := range envAliases {
		names = append(names, strings.TrimPrefix(a, "DEER_"))
	}
	slices.Sort(names) // ties go the same way every run
	if s := closest(strings.TrimPrefix(name, "DEER_"), names); s != "" {
		return envAliases["DEER_"+s]
	}
	return ""
}
