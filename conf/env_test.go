package conf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEnvTableCoversEveryKey(t *testing.T) {
	seen := map[string]string{}
	for _, e := range EnvVars() {
		if _, ok := fieldsByKey[e.Key]; !ok {
			t.Errorf("%s maps to unknown key %q", e.Name, e.Key)
		}
		if other, dup := seen[e.Key]; dup {
			t.Errorf("%s and %s both set %s", other, e.Name, e.Key)
		}
		seen[e.Key] = e.Name
		if EnvFor(e.Key) != e.Name {
			t.Errorf("EnvFor(%q) = %q, want %q", e.Key, EnvFor(e.Key), e.Name)
		}
	}
	for _, k := range Keys() {
		if seen[k] == "" {
			t.Errorf("key %s has no DEER_* env var", k)
		}
	}
}

// TestEveryEnvVarIsRead sets each variable alone to a valid non-default
// value and checks its key changed to it.
func TestEveryEnvVarIsRead(t *testing.T) {
	values := map[string]struct {
		raw  string
		want any
	}{
		"DEER_ADVANCED_OPTIMIZATION":      {"off", false},
		"DEER_COLLABORATION":              {"No", false},
		"DEER_DEBUG_MODE":                 {"1", true},
		"DEER_DEFAULT_UPSTREAM":           {"openai", "openai"},
		"DEER_HTTP_ADDR":                  {"0.0.0.0:9000", "0.0.0.0:9000"},
		"DEER_ADMIN_TOKEN":                {"s3cret-token", "s3cret-token"},
		"DEER_MAX_BODY_BYTES":             {"2048", int64(2048)},
		"DEER_FAULT_INJECTION":            {"YES", true},
		"DEER_MAX_CONNECTIONS":            {"100", 100},
		"DEER_INITIAL_CONNECTIONS":        {"0", 0},
		"DEER_CONNECTION_TIMEOUT":         {"2.5", 2.5},
		"DEER_IDLE_TIMEOUT":               {"90", 90.0},
		"DEER_CONNECTION_RETRIES":         {"0", 0},
		"DEER_BATCH_SIZE":                 {"20", 20},
		"DEER_BATCH_TIMEOUT":              {"0.25", 0.25},
		"DEER_MAX_QUEUE_SIZE":             {"5000", 5000},
		"DEER_PRIORITY_ENABLED":           {"false", false},
		"DEER_ADAPTIVE_SIZING":            {"0", false},
		"DEER_L1_CACHE_SIZE":              {"2000", 2000},
		"DEER_L2_CACHE_SIZE":              {"10000", 10000},
		"DEER_L3_CACHE_SIZE":              {"50000", 50000},
		"DEER_CACHE_TTL":                  {"300", 300.0},
		"DEER_CACHE_CLEANUP_INTERVAL":     {"60", 60.0},
		"DEER_CACHE_EVICTION_POLICY":      {"lfu", "lfu"},
		"DEER_L3_PATH":                    {"/var/lib/deer/cache", "/var/lib/deer/cache"},
		"DEER_CACHE_SHARE_ACROSS_KEYS":    {"on", true},
		"DEER_INITIAL_RATE":               {"5.5", 5.5},
		"DEER_MAX_RATE":                   {"500.0", 500.0},
		"DEER_MIN_RATE":                   {"0.5", 0.5},
		"DEER_ADAPTATION_FACTOR":          {"1.5", 1.5},
		"DEER_RATE_WINDOW_SIZE":           {"30", 30.0},
		"DEER_BURST_ALLOWANCE":            {"40", 40},
		"DEER_MAX_RETRIES":                {"1", 1},
		"DEER_BASE_DELAY":                 {"0.1", 0.1},
		"DEER_MAX_DELAY":                  {"10", 10.0},
		"DEER_EXPONENTIAL_BASE":           {"1.5", 1.5},
		"DEER_CIRCUIT_THRESHOLD":          {"10", 10},
		"DEER_FAILURE_WINDOW":             {"30", 30.0},
		"DEER_FAILURE_RATE_THRESHOLD":     {"0.25", 0.25},
		"DEER_CIRCUIT_TIMEOUT":            {"15", 15.0},
		"DEER_JITTER_ENABLED":             {" false\n", false},
		"DEER_MAX_WORKERS":                {"50", 50},
		"DEER_PARALLEL_QUEUE_SIZE":        {"200", 200},
		"DEER_PRIORITY_LEVELS":            {"5", 5},
		"DEER_LOAD_BALANCING":             {"off", false},
		"DEER_WORKER_TIMEOUT":             {"120", 120.0},
		"DEER_HEALTH_CHECK_INTERVAL":      {"5", 5.0},
		"DEER_METRICS_ENABLED":            {"false", false},
		"DEER_DETAILED_LOGGING":           {"false", false},
		"DEER_SLOW_REQUEST_THRESHOLD":     {"2", 2.0},
		"DEER_HIGH_UTILIZATION_THRESHOLD": {"0.95", 0.95},
		"DEER_METRICS_RETENTION":          {"3600", 3600.0},
		"DEER_EXPORT_INTERVAL":            {"15", 15.0},
		"DEER_PUSH_URL":                   {"http://127.0.0.1:9091/metrics/job/deer", "http://127.0.0.1:9091/metrics/job/deer"},
		"DEER_L3_BACKEND":                 {"redis", "redis"},
		"DEER_REDIS_URL":                  {"redis://:pw@127.0.0.1:6390/2", "redis://:pw@127.0.0.1:6390/2"},
	}
	if len(values) != len(EnvVars()) {
		t.Fatalf("test has values for %d env vars, the table has %d", len(values), len(EnvVars()))
	}
	base, err := Load(LoadOptions{ConfigPath: "deer.toml", Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range EnvVars() {
		t.Run(e.Name, func(t *testing.T) {
			v, ok := values[e.Name]
			if !ok {
				t.Fatalf("no test value for %s", e.Name)
			}
			f := fieldsByKey[e.Key]
			if f.in(base).Interface() == v.want {
				t.Fatalf("test value %v for %s is the default", v.want, e.Key)
			}
			vars := map[string]string{e.Name: v.raw}
			if e.Name == "DEER_L3_BACKEND" { // "redis" needs a Redis
				vars["DEER_REDIS_URL"] = "redis://127.0.0.1:6379"
			}
			c, src, err := LoadWithSource(LoadOptions{ConfigPath: "deer.toml", Lookup: env(vars)})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.in(c).Interface(); got != v.want {
				t.Errorf("%s=%q: %s = %v (%T), want %v (%T)", e.Name, v.raw, e.Key, got, got, v.want, v.want)
			}
			if src.Env(e.Key) != e.Name {
				t.Errorf("source of %s = %q, want env %s", e.Key, src[e.Key], e.Name)
			}
		})
	}
}

func TestEnvBooleans(t *testing.T) {
	for raw, want := range map[string]bool{
		"true": true, "TRUE": true, "1": true, "yes": true, "Yes": true, "on": true, "ON": true,
		"false": false, "False": false, "0": false, "no": false, "NO": false, "off": false, "Off": false,
	} {
		c, err := Load(LoadOptions{Lookup: env(map[string]string{"DEER_DEBUG_MODE": raw})})
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		if c.DebugMode != want {
			t.Errorf("DEER_DEBUG_MODE=%q: debug_mode = %v, want %v", raw, c.DebugMode, want)
		}
	}
}

func TestEnvRejects(t *testing.T) {
	tests := []struct {
		env  map[string]string
		key  string
		want string // the whole message
	}{
		{map[string]string{"DEER_MAX_WORKERS": "10.0"}, "parallel_execution.max_workers",
			`DEER_MAX_WORKERS (parallel_execution.max_workers): "10.0" is not an integer`},
		{map[string]string{"DEER_MAX_WORKERS": "ten"}, "parallel_execution.max_workers",
			`DEER_MAX_WORKERS (parallel_execution.max_workers): "ten" is not an integer`},
		{map[string]string{"DEER_MAX_WORKERS": ""}, "parallel_execution.max_workers",
			`DEER_MAX_WORKERS (parallel_execution.max_workers): "" is not an integer`},
		{map[string]string{"DEER_MAX_WORKERS": "1e3"}, "parallel_execution.max_workers",
			`DEER_MAX_WORKERS (parallel_execution.max_workers): "1e3" is not an integer`},
		{map[string]string{"DEER_MAX_BODY_BYTES": "99999999999999999999"}, "server.max_body_bytes",
			`DEER_MAX_BODY_BYTES (server.max_body_bytes): "99999999999999999999" is out of range`},
		{map[string]string{"DEER_DEBUG_MODE": "maybe"}, "debug_mode",
			`DEER_DEBUG_MODE (debug_mode): "maybe" is not a boolean (use true/false, 1/0, yes/no or on/off)`},
		{map[string]string{"DEER_DEBUG_MODE": "2"}, "debug_mode",
			`DEER_DEBUG_MODE (debug_mode): "2" is not a boolean (use true/false, 1/0, yes/no or on/off)`},
		{map[string]string{"DEER_MAX_RATE": "fast"}, "rate_limit.max_rate",
			`DEER_MAX_RATE (rate_limit.max_rate): "fast" is not a decimal number`},
		{map[string]string{"DEER_MAX_RATE": "NaN"}, "rate_limit.max_rate",
			`DEER_MAX_RATE (rate_limit.max_rate): "NaN" is not a decimal number`},
		{map[string]string{"DEER_MAX_RATE": "Inf"}, "rate_limit.max_rate",
			`DEER_MAX_RATE (rate_limit.max_rate): "Inf" is not a decimal number`},
		{map[string]string{"DEER_MAX_RATE": "0x10"}, "rate_limit.max_rate",
			`DEER_MAX_RATE (rate_limit.max_rate): "0x10" is not a decimal number`},
		{map[string]string{"DEER_MAX_RATE": "1_000"}, "rate_limit.max_rate",
			`DEER_MAX_RATE (rate_limit.max_rate): "1_000" is not a decimal number`},
		{map[string]string{"DEER_MAX_RATE": "1e999"}, "rate_limit.max_rate",
			`DEER_MAX_RATE (rate_limit.max_rate): "1e999" is out of range`},
		// Parsed, then refused by validation, which names the variable.
		{map[string]string{"DEER_MAX_WORKERS": "0"}, "parallel_execution.max_workers",
			`parallel_execution.max_workers (0) must be between 1 and 10000 (from DEER_MAX_WORKERS)`},
		{map[string]string{"DEER_MIN_RATE": "5", "DEER_MAX_RATE": "2"}, "rate_limit.min_rate",
			`rate_limit.min_rate (5) must be <= rate_limit.max_rate (2) (from DEER_MIN_RATE)`},
		{map[string]string{"DEER_MAX_RATE": "2"}, "rate_limit.initial_rate",
			`rate_limit.initial_rate (10) must be <= rate_limit.max_rate (2) (from DEER_MAX_RATE)`},
		{map[string]string{"DEER_HTTP_ADDR": "localhost"}, "server.addr",
			`server.addr ("localhost") must be host:port, like 127.0.0.1:8000 (from DEER_HTTP_ADDR)`},
		{map[string]string{"DEER_CACHE_EVICTION_POLICY": "random"}, "cache.eviction_policy",
			`cache.eviction_policy ("random") must be one of "lru", "lfu", "fifo" (from DEER_CACHE_EVICTION_POLICY)`},
		{map[string]string{"DEER_DEFAULT_UPSTREAM": "nope"}, "default_upstream",
			`default_upstream ("nope") is not a configured upstream (configured: ) (from DEER_DEFAULT_UPSTREAM)`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Load(LoadOptions{Lookup: env(tt.env)})
			e := wantProblem(t, err, tt.key)
			if e.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", e.Error(), tt.want)
			}
			if e.Env == "" {
				t.Errorf("FieldError.Env is empty")
			}
		})
	}
}

// TestPrecedence checks env > file > profile > default for a key of each
// type.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("profiles/production.toml", `debug_mode = true
[parallel_execution]
max_workers = 30
[rate_limit]
max_rate = 200.5
[cache]
eviction_policy = "lfu"
`)
	file := write("deer.toml", `debug_mode = false
[parallel_execution]
max_workers = 40
[rate_limit]
max_rate = 300.25
[cache]
eviction_policy = "fifo"
`)
	empty := write("empty.toml", "")
	envs := map[string]string{
		"DEER_DEBUG_MODE":            "true",
		"DEER_MAX_WORKERS":           "50",
		"DEER_MAX_RATE":              "400.75",
		"DEER_CACHE_EVICTION_POLICY": "lru",
	}
	type want struct {
		debug   bool
		workers int
		rate    float64
		policy  string
	}
	tests := []struct {
		name    string
		file    string
		profile string
		env     map[string]string
		want    want
	}{
		{"default", "", "", nil, want{false, 20, 100, "lru"}},
		{"profile beats default", empty, "production", nil, want{true, 30, 200.5, "lfu"}},
		{"file beats default", file, "", nil, want{false, 40, 300.25, "fifo"}},
		{"file beats profile", file, "production", nil, want{false, 40, 300.25, "fifo"}},
		{"env beats default", "", "", envs, want{true, 50, 400.75, "lru"}},
		{"env beats file and profile", file, "production", envs, want{true, 50, 400.75, "lru"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(LoadOptions{ConfigPath: tt.file, Profile: tt.profile, Lookup: env(tt.env)})
			if err != nil {
				t.Fatal(err)
			}
			got := want{c.DebugMode, c.ParallelExecution.MaxWorkers, c.RateLimit.MaxRate, c.Cache.EvictionPolicy}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestUnknownEnvWarnings: a DEER_* variable deer does not read is a
// warning naming the closest real variable when one is near, and the
// configuration still loads. Variables deer reads without being settings
// (an upstream's api_key_env, the compat script's DEER_BASE_URL) are not
// reported.
func TestUnknownEnvWarnings(t *testing.T) {
	path := writeConfig(t, "[upstreams.up]\nbase_url = \"http://127.0.0.1:9\"\napi_key_env = \"DEER_UP_KEY\"\n")
	environ := []string{
		"PATH=/bin",
		"DEER_MAX_WORKRS=5",                     // a letter missing
		"DEER_MAX_WOKRERS=5",                    // two letters swapped
		"DEER_max_workers=5",                    // wrong case
		"DEER_DEBUG=1",                          // the start of one variable's name
		"DEER_DEFAULT_TTL=60",                   // the key's name, not the variable's
		"DEER_PARALLEL_EXECUTION_MAX_WORKERS=5", // the whole key
		"DEER_COLOUR=blue",                      // nothing near
		"DEER_MAX=1",                            // the start of many
		"DEER_COLOUR=red",                       // listed twice: one warning
		"DEER_MAX_WORKERS=7",                    // real
		"DEER_UP_KEY=sk-1",                      // an upstream's api_key_env
		"DEER_BASE_URL=http://x/v1",             // read by scripts/compat
		"NOT_DEER_MAX_WORKRS=1",                 // not DEER_*
	}
	lookup := func(name string) (string, bool) {
		for _, kv := range environ {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v, true
			}
		}
		return "", false
	}
	l := LoadAll(LoadOptions{ConfigPath: path, Lookup: lookup, Environ: func() []string { return environ }})
	if len(l.Problems) > 0 || l.Config.ParallelExecution.MaxWorkers != 7 {
		t.Fatalf("problems %v, config %+v: unknown variables must not stop the load", l.Problems, l.Config)
	}
	want := []string{
		"unknown variable DEER_MAX_WORKRS is ignored (did you mean DEER_MAX_WORKERS?)",
		"unknown variable DEER_MAX_WOKRERS is ignored (did you mean DEER_MAX_WORKERS?)",
		"unknown variable DEER_max_workers is ignored (did you mean DEER_MAX_WORKERS?)",
		"unknown variable DEER_DEBUG is ignored (did you mean DEER_DEBUG_MODE?)",
		"unknown variable DEER_DEFAULT_TTL is ignored (did you mean DEER_CACHE_TTL?)",
		"unknown variable DEER_PARALLEL_EXECUTION_MAX_WORKERS is ignored (did you mean DEER_MAX_WORKERS?)",
		"unknown variable DEER_COLOUR is ignored",
		"unknown variable DEER_MAX is ignored",
	}
	var got []string
	for _, w := range l.Warnings {
		got = append(got, w.Error())
		if !strings.HasPrefix(w.Env, "DEER_") || w.Key != "" {
			t.Errorf("warning %q: Env %q, Key %q", w.Error(), w.Env, w.Key)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}

	// Lookup without Environ (a test's map): no listing, no warnings.
	if l := LoadAll(LoadOptions{ConfigPath: path, Lookup: lookup}); len(l.Warnings) != 0 {
		t.Errorf("warnings without Environ: %v", l.Warnings)
	}
}

// TestEveryEnvVarIsItsOwnBestSuggestion: no real variable is reported, and
// each one-letter typo of a real variable is pointed back at it.
func TestEveryEnvVarIsItsOwnBestSuggestion(t *testing.T) {
	var environ []string
	for _, e := range EnvVars() {
		environ = append(environ, e.Name+"=x")
	}
	if w := unknownEnv(environ, Default()); len(w) != 0 {
		t.Errorf("real variables reported: %v", w)
	}
	for _, e := range EnvVars() {
		typo := e.Name[:len(e.Name)-1] // the last letter missing
		if got := suggestEnv(typo); got != e.Name {
			t.Errorf("suggestEnv(%s) = %q, want %s", typo, got, e.Name)
		}
	}
}
