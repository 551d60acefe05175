package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// writeConfig writes text as a config file in a fresh directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "deer.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShippedFiles(t *testing.T) {
	tests := []struct {
		profile string
		check   func(t *testing.T, c *Config)
	}{
		{"", func(t *testing.T, c *Config) {
			d := Default()
			d.DefaultUpstream = c.DefaultUpstream
			d.Upstreams = c.Upstreams
			if !reflect.DeepEqual(c, d) {
				t.Errorf("deer.toml sets more than upstreams: %+v", c)
			}
		}},
		{"production", func(t *testing.T, c *Config) {
			got := []any{c.EnableAdvancedOptimization, c.ConnectionPool.MaxConnections, c.BatchProcessing.BatchSize,
				c.Cache.L1Size, c.Cache.L2Size, c.Cache.L3Size, c.RateLimit.MaxRate, c.ParallelExecution.MaxWorkers, c.Monitoring.DetailedLogging}
			want := []any{true, 100, 20, 2000, 10000, 50000, 500.0, 50, false}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		}},
		{"development", func(t *testing.T, c *Config) {
			got := []any{c.EnableAdvancedOptimization, c.DebugMode, c.ConnectionPool.MaxConnections, c.BatchProcessing.BatchSize,
				c.Monitoring.DetailedLogging, c.Monitoring.MetricsEnabled}
			want := []any{true, true, 20, 5, true, true}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		}},
		{"test", func(t *testing.T, c *Config) {
			got := []any{c.EnableAdvancedOptimization, c.ConnectionPool.MaxConnections, c.ConnectionPool.InitialConnections,
				c.BatchProcessing.BatchSize, c.Cache.DefaultTTL, c.ErrorRecovery.MaxRetries}
			want := []any{false, 10, 10, 3, 300.0, 1}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		}},
	}
	for _, tt := range tests {
		for _, path := range []string{"deer.toml", ""} {
			t.Run(tt.profile+"/"+path, func(t *testing.T) {
				// Without a file, profiles are found under conf/profiles
				// relative to the working directory: the repository root.
				opts := LoadOptions{ConfigPath: path, Profile: tt.profile, Lookup: noEnv}
				if path == "" {
					if tt.profile == "" {
						t.Skip("plain defaults: TestDefaultsValidate")
					}
					opts.ProfileDir = "profiles"
				}
				c, err := Load(opts)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Validate(); err != nil {
					t.Fatal(err)
				}
				tt.check(t, c)
				if path == "" && len(c.Upstreams) != 0 {
					t.Errorf("a profile defines upstreams: %v", c.Upstreams)
				}
				if path != "" {
					sim, openai := c.Upstreams["sim"], c.Upstreams["openai"]
					// No default_upstream: a model nobody lists is 404, not a
					// fake answer from the simulator.
					if c.DefaultUpstream != "" || !sim.Builtin || sim.BaseURL != "http://127.0.0.1:0" ||
						sim.Batch != "openai-embeddings" || openai.APIKeyEnv != "OPENAI_API_KEY" || openai.BaseURL != "https://api.openai.com" {
						t.Errorf("upstreams: %+v, default %q", c.Upstreams, c.DefaultUpstream)
					}
				}
			})
		}
	}
}

// TestDeerTOMLDocumentsDefaults uncomments every "#key = value" line of
// conf/deer.toml and checks the result equals the file as shipped: the
// values it shows are the built-in defaults.
func TestDeerTOMLDocumentsDefaults(t *testing.T) {
	data, err := os.ReadFile("deer.toml")
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`(?m)^#([a-z0-9_]+ = .*)$`)
	shown := setting.FindAllSubmatch(data, -1)
	if len(shown) != len(Keys()) {
		t.Errorf("deer.toml shows %d settings, want %d", len(shown), len(Keys()))
	}
	uncommented := writeConfig(t, string(setting.ReplaceAll(data, []byte("$1"))))
	want, err := Load(LoadOptions{ConfigPath: "deer.toml", Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	got, src, err := LoadWithSource(LoadOptions{ConfigPath: uncommented, Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("uncommented deer.toml differs from the defaults:\n got %+v\nwant %+v", got, want)
	}
	for _, k := range Keys() {
		if src[k] == "" {
			t.Errorf("deer.toml does not show %s", k)
		}
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name, text string
		key, want  string
	}{
		{"unknown key", "[batch_processing]\nbatch_sizee = 5\n", "batch_processing.batch_sizee", "unknown key batch_processing.batch_sizee"},
		{"unknown top-level key", "debug = true\n", "debug", "unknown key debug"},
		{"unknown section reported once", "[metrics]\nenabled = true\nport = 1\n", "metrics", "unknown key metrics"},
		{"wrong case", "[connection_pool]\nMAX_CONNECTIONS = 5\n", "connection_pool.MAX_CONNECTIONS", "unknown key connection_pool.MAX_CONNECTIONS"},
		{"quoted dotted key", "\"cache.l1_size\" = 5\n", `"cache.l1_size"`, "unknown key"},
		{"unknown upstream field", "[upstreams.x]\nbase_url = \"http://a\"\napi_key = \"sk-123\"\n", "upstreams.x.api_key", "unknown key upstreams.x.api_key"},
		{"float for integer", "[parallel_execution]\nmax_workers = 10.0\n", "parallel_execution.max_workers", "expected an integer, got the float 10.0"},
		{"string for bool", "debug_mode = \"yes\"\n", "debug_mode", "debug_mode"},
		{"table expected", "cache = 5\n", "cache", "cache: expected a table, got the integer 5"},
		{"out of range validated", "[cache]\nl1_size = 0\n", "cache.l1_size", "cache.l1_size (0) must be between 1"},
		{"upstream timeout 0", "[upstreams.x]\nbase_url = \"http://a\"\ntimeout = 0\n", "upstreams.x.timeout", "(0) must be > 0"},
		{"syntax", "[cache\n", "", "deer.toml:2:7: TOML syntax error: expected '.' or ']' to end table name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			_, err := Load(LoadOptions{ConfigPath: path, Lookup: noEnv})
			if tt.key == "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v; want %q", err, tt.want)
				}
				return
			}
			e := wantProblem(t, err, tt.key, tt.want)
			if strings.Contains(tt.want, "unknown") && !strings.Contains(e.Error(), path) {
				t.Errorf("%q does not name the file", e.Error())
			}
			if n := len(fieldErrors(t, err)); n != 1 {
				t.Errorf("%d problems, want 1: %v", n, err)
			}
		})
	}
}

func TestProfileErrors(t *testing.T) {
	_, err := Load(LoadOptions{Profile: "staging", Lookup: noEnv})
	if err == nil || !strings.Contains(err.Error(), `--profile "staging": must be one of production, development, test`) {
		t.Errorf("unknown profile: %v", err)
	}
	_, err = Load(LoadOptions{Profile: "test", ProfileDir: t.TempDir(), Lookup: noEnv})
	if err == nil || !strings.Contains(err.Error(), "test.toml") {
		t.Errorf("missing profile file: %v", err)
	}
	_, err = Load(LoadOptions{ConfigPath: filepath.Join(t.TempDir(), "absent.toml"), Lookup: noEnv})
	if err == nil || !strings.Contains(err.Error(), "absent.toml") {
		t.Errorf("missing config file: %v", err)
	}
}

func TestProfileNextToConfigFile(t *testing.T) {
	path := writeConfig(t, "")
	dir := filepath.Join(filepath.Dir(path), "profiles")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "development.toml"), []byte("[batch_processing]\nbatch_size = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, src, err := LoadWithSource(LoadOptions{ConfigPath: path, Profile: "development", Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchProcessing.BatchSize != 7 {
		t.Errorf("batch_size = %d, want 7 from the profile", c.BatchProcessing.BatchSize)
	}
	if want := "profile " + filepath.Join(dir, "development.toml"); src["batch_processing.batch_size"] != want {
		t.Errorf("source = %q, want %q", src["batch_processing.batch_size"], want)
	}
}

func TestUpstreamDefaults(t *testing.T) {
	path := writeConfig(t, `
[upstreams.a]
base_url = "http://127.0.0.1:9"
[upstreams.b]
base_url = "http://127.0.0.1:10"
cache = "never"
timeout = 5.5
`)
	c, err := Load(LoadOptions{ConfigPath: path, Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Upstreams["a"]; a.Cache != "auto" || a.Timeout != 60 {
		t.Errorf("a = %+v, want cache auto, timeout 60", a)
	}
	if b := c.Upstreams["b"]; b.Cache != "never" || b.Timeout != 5.5 {
		t.Errorf("b = %+v, want cache never, timeout 5.5", b)
	}
}

func TestTOMLRoundTrip(t *testing.T) {
	c, err := Load(LoadOptions{ConfigPath: "deer.toml", Profile: "production", Lookup: env(map[string]string{
		"DEER_ADMIN_TOKEN": "tok",
		"DEER_PUSH_URL":    "https://push.example/metrics/job/deer",
		"DEER_BASE_DELAY":  "0.125",
	})})
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams["openai"]
	u.Endpoints = []string{"https://eu.api.openai.com"}
	c.Upstreams["openai"] = u
	for _, c := range []*Config{c, Default(), valid()} {
		data, err := c.TOML()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Load(LoadOptions{ConfigPath: writeConfig(t, string(data)), Lookup: noEnv})
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip differs:\n got %+v\nwant %+v\n%s", got, c, data)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := valid()
	c.Server.AdminToken = "secret"
	u := c.Upstreams["sim"]
	u.APIKeyEnv = "SIM_KEY"
	c.Upstreams["sim"] = u
	r := c.Redacted()
	if r.Server.AdminToken != RedactedValue || r.Upstreams["sim"].APIKeyEnv != "SIM_KEY" {
		t.Errorf("Redacted: token %q, api_key_env %q", r.Server.AdminToken, r.Upstreams["sim"].APIKeyEnv)
	}
	if c.Server.AdminToken != "secret" {
		t.Error("Redacted modified its receiver")
	}
	if Default().Redacted().Server.AdminToken != "" {
		t.Error("an unset token must stay empty, not look set")
	}
	data, err := r.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret") {
		t.Errorf("redacted TOML shows the token:\n%s", data)
	}
	_, err = Load(LoadOptions{ConfigPath: writeConfig(t, string(data)), Lookup: noEnv})
	wantProblem(t, err, "server.admin_token", "redaction placeholder")
}

func TestClone(t *testing.T) {
	c := valid()
	u := c.Upstreams["sim"]
	u.Endpoints = []string{"http://127.0.0.1:8002"}
	c.Upstreams["sim"] = u
	n := c.Clone()
	if !reflect.DeepEqual(n, c) {
		t.Fatal("clone differs")
	}
	n.Upstreams["sim"].Models[0] = "changed"
	n.Upstreams["sim"].Endpoints[0] = "changed"
	n.Upstreams["new"] = Upstream{}
	if c.Upstreams["sim"].Models[0] != "sim-model" || c.Upstreams["sim"].Endpoints[0] != "http://127.0.0.1:8002" || len(c.Upstreams) != 1 {
		t.Errorf("clone shares memory with the original: %+v", c.Upstreams)
	}
}

// seventeenLines is a config file whose line 17 is replaced by each case
// of TestFileErrorLines.
func seventeenLines(line17 string) string {
	lines := []string{
		"# a config file with its problem far down", // 1
		"default_upstream = \"sim\"",                // 2
		"",                                          // 3
		"[server]",                                  // 4
		"max_body_bytes = 20480",                    // 5
		"",                                          // 6
		"[cache]",                                   // 7
		"l1_size = 100",                             // 8
		"",                                          // 9
		"[upstreams.sim]",                           // 10
		"base_url = \"http://127.0.0.1:8001\"",      // 11
		"models = [\"sim-model\"]",                  // 12
		"",                                          // 13
		"[parallel_execution]",                      // 14
		"queue_size = 100",                          // 15
		"# the next line is 17",                     // 16
		line17,                                      // 17
		"priority_levels = 3",                       // 18
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestFileErrorLines: problems in a file name the file, the line (and the
// value's column, as BurntSushi counts it: inside a string's quotes) and
// the key.
func TestFileErrorLines(t *testing.T) {
	tests := []struct {
		name, line17 string
		key, want    string
	}{
		{"type error", `max_workers = "ten"`, "parallel_execution.max_workers",
			`:17:16: parallel_execution.max_workers: expected an integer, got the string "ten"`},
		{"float for integer", `max_workers = 10.5`, "parallel_execution.max_workers",
			`:17:15: parallel_execution.max_workers: expected an integer, got the float 10.5`},
		{"list for number", `worker_timeout = [1]`, "parallel_execution.worker_timeout",
			`:17:19: parallel_execution.worker_timeout: expected a number, got an array`},
		{"unknown key", `max_workrs = 10`, "parallel_execution.max_workrs",
			`:17: unknown key parallel_execution.max_workrs (did you mean parallel_execution.max_workers?)`},
		{"wrong case", `MAX_WORKERS = 10`, "parallel_execution.MAX_WORKERS",
			`:17: unknown key parallel_execution.MAX_WORKERS (did you mean parallel_execution.max_workers?)`},
		{"unknown, nothing near", `colour = "blue"`, "parallel_execution.colour",
			`:17: unknown key parallel_execution.colour`},
		{"unknown table", `[metrics]`, "metrics", `:17: unknown key metrics`},
		{"syntax", `max_workers = = 10`, "parallel_execution.max_workers", `:17:15: TOML syntax error after key parallel_execution.max_workers: expected value but found '=' instead`},
		{"syntax, unclosed string", `max_workers = "10`, "parallel_execution.max_workers", `:17:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, seventeenLines(tt.line17))
			_, err := Load(LoadOptions{ConfigPath: path, Lookup: noEnv})
			e := wantProblem(t, err, tt.key, path+tt.want)
			if !strings.HasPrefix(e.Error(), path+":17:") {
				t.Errorf("%q does not start with %s:17:", e.Error(), path)
			}
			if strings.Contains(tt.want, "did you mean") != strings.Contains(e.Error(), "did you mean") {
				t.Errorf("suggestion in %q: want one: %v", e.Error(), strings.Contains(tt.want, "did you mean"))
			}
			if n := len(fieldErrors(t, err)); n != 1 {
				t.Errorf("%d problems, want 1: %v", n, err)
			}
		})
	}
}

// TestEveryProblemListed: one load reports the problems of every stage —
// unknown keys and type errors in the profile and the file, unparseable
// env values, and validation of what was read — not only the first.
func TestEveryProblemListed(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(dir, "profiles", "test.toml")
	if err := os.WriteFile(profile, []byte("[cache]\nl2_sise = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "deer.toml")
	if err := os.WriteFile(file, []byte(`debug_mode = "yes"
[batch_processing]
batch_size = 0
[rate_limit]
max_rat = 5.0
min_rate = 50.0
[upstreams.sim]
base_url = 8001
`), 0o644); err != nil {
		t.Fatal(err)
	}
	l := LoadAll(LoadOptions{ConfigPath: file, Profile: "test", Lookup: env(map[string]string{
		"DEER_MAX_WORKERS":   "ten",
		"DEER_BATCH_TIMEOUT": "-1",
	}), Environ: func() []string { return nil }})
	if l.Config != nil {
		t.Errorf("a configuration with problems was returned")
	}
	want := []string{
		profile + ":2: unknown key cache.l2_sise (did you mean cache.l2_size?)",
		file + `:1:15: debug_mode: expected true or false, got the string "yes"`,
		file + ":5: unknown key rate_limit.max_rat (did you mean rate_limit.max_rate?)",
		file + ":8:12: upstreams.sim.base_url: expected a string, got the integer 8001",
		`DEER_MAX_WORKERS (parallel_execution.max_workers): "ten" is not an integer`,
		"batch_processing.batch_size (0) must be between 1 and 10000",
		"batch_processing.batch_timeout (-1) must be > 0 and <= 31536000 seconds (365 days) (from DEER_BATCH_TIMEOUT)",
		"rate_limit.min_rate (50) must be <= rate_limit.initial_rate (10)",
	}
	var got []string
	for _, e := range l.Problems {
		got = append(got, e.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}
