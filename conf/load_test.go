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
					if c.DefaultUpstream != "" || !sim.Builtin || sim.BaseURL != "http://127.0.0.1:8001" ||
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
		{"float for integer", "[parallel_execution]\nmax_workers = 10.0\n", "parallel_execution.max_workers", "incompatible types"},
		{"string for bool", "debug_mode = \"yes\"\n", "debug_mode", "debug_mode"},
		{"table expected", "cache = 5\n", "cache", "expected table"},
		{"out of range validated", "[cache]\nl1_size = 0\n", "cache.l1_size", "cache.l1_size (0) must be between 1"},
		{"upstream timeout 0", "[upstreams.x]\nbase_url = \"http://a\"\ntimeout = 0\n", "upstreams.x.timeout", "(0) must be > 0"},
		{"syntax", "[cache\n", "", "deer.toml: toml: line 2: expected"},
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
