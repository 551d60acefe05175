package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deer-runtime/deer/conf"
)

// upstreamConfig writes a config file whose one upstream is a real local
// HTTP server, instead of conf/deer.toml's builtin simulator on the fixed
// port 127.0.0.1:8001 (two test processes would fight over it).
func upstreamConfig(t testing.TB) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	t.Cleanup(up.Close)
	return writeFile(t, "deer.toml", `default_upstream = "up"

[upstreams.up]
base_url = "`+up.URL+`"
models = ["up-model"]
batch = "openai-embeddings"
`)
}

func TestCheckConfig(t *testing.T) {
	unknownKey := writeFile(t, "unknown.toml", "[batch_processing]\nbatch_sizee = 15\n")
	outOfRange := writeFile(t, "range.toml", "[rate_limit]\nmin_rate = 500.0\n")
	badSyntax := writeFile(t, "syntax.toml", "[rate_limit\n")
	everyProblem := writeFile(t, "every.toml", "# problems on several lines\ndebug_mode = \"yes\"\n[batch_processing]\nbatch_sizee = 15\nbatch_timeout = \"1s\"\n")
	missing := filepath.Join(t.TempDir(), "absent.toml")
	cases := []struct {
		name    string
		dir     string // working directory; "" is a new empty one
		env     []string
		args    []string
		code    int
		want    []string // in the output (stdout and stderr)
		wantNot []string // not in it
	}{
		{name: "shipped file", dir: repoRoot, args: []string{"--check-config"}, code: 0, want: []string{"configuration is valid"}},
		{name: "production profile", dir: repoRoot, args: []string{"--check-config", "--profile", "production"}, code: 0},
		{name: "development profile", dir: repoRoot, args: []string{"--check-config", "--profile", "development"}, code: 0},
		{name: "test profile", dir: repoRoot, args: []string{"--check-config", "--profile", "test"}, code: 0},
		{name: "no file: built-in defaults", args: []string{"--check-config"}, code: 0, want: []string{"configuration is valid"}},
		{name: "fraction for an integer env var", dir: repoRoot, env: []string{"DEER_MAX_WORKERS=10.0"},
			args: []string{"--check-config"}, code: 1, want: []string{"DEER_MAX_WORKERS", "parallel_execution.max_workers", "10.0"}},
		{name: "bad boolean env var", dir: repoRoot, env: []string{"DEER_JITTER_ENABLED=maybe"},
			args: []string{"--check-config"}, code: 1, want: []string{"DEER_JITTER_ENABLED", "error_recovery.jitter_enabled"}},
		{name: "unknown key in a file", args: []string{"--check-config", "--config", unknownKey}, code: 1,
			want: []string{"batch_processing.batch_sizee", "unknown"}},
		{name: "out of range in a file", args: []string{"--check-config", "--config", outOfRange}, code: 1,
			want: []string{"rate_limit.min_rate", "rate_limit.max_rate"}},
		{name: "syntax error", args: []string{"--check-config", "--config", badSyntax}, code: 1, want: []string{badSyntax}},
		{name: "missing file", args: []string{"--check-config", "--config", missing}, code: 1, want: []string{missing}},
		{name: "unknown profile", dir: repoRoot, args: []string{"--check-config", "--profile", "nope"}, code: 1,
			want: []string{`"nope"`, "production"}},
		{name: "unknown profile without --check-config", dir: repoRoot, args: []string{"--profile", "nope"}, code: 1,
			want: []string{`"nope"`}},
		{name: "misspelled env var: a warning, still valid", env: []string{"DEER_MAX_WORKRS=5", "DEER_BASE_URL=http://127.0.0.1:8000/v1"},
			args: []string{"--check-config"}, code: 0, want: []string{"configuration is valid\nwarnings",
				"unknown variable DEER_MAX_WORKRS is ignored (did you mean DEER_MAX_WORKERS?)"}, wantNot: []string{"DEER_BASE_URL"}},
		{name: "every problem of every stage", env: []string{"DEER_MAX_WORKERS=ten", "DEER_MIN_RATE=500", "DEER_COLOUR=1"},
			args: []string{"--check-config", "--config", everyProblem}, code: 1, want: []string{
				everyProblem + `:2:15: debug_mode: expected true or false, got the string "yes"`,
				everyProblem + ":4: unknown key batch_processing.batch_sizee (did you mean batch_processing.batch_size?)",
				everyProblem + `:5:18: batch_processing.batch_timeout: expected a number, got the string "1s"`,
				`DEER_MAX_WORKERS (parallel_execution.max_workers): "ten" is not an integer`,
				"rate_limit.min_rate (500) must be <= rate_limit.max_rate (100) (from DEER_MIN_RATE)",
				"warnings (deerd starts, and logs each):\n  - unknown variable DEER_COLOUR is ignored\n",
			}},
		{name: "bad --addr", args: []string{"--check-config", "--addr", "nowhere"}, code: 1, want: []string{"server.addr"}},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, want: []string{"nope"}},
		{name: "stray argument", args: []string{"--check-config", "extra"}, code: 2, want: []string{"extra"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tc.dir
			if dir == "" {
				dir = t.TempDir()
			}
			res := runDeerd(t, dir, cleanEnv(t, tc.env...), tc.args...)
			if res.code != tc.code {
				t.Fatalf("exit code %d, want %d:\n%s", res.code, tc.code, res.output())
			}
			for _, w := range tc.want {
				if !strings.Contains(res.output(), w) {
					t.Errorf("output does not name %q:\n%s", w, res.output())
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(res.output(), w) {
					t.Errorf("output names %q:\n%s", w, res.output())
				}
			}
		})
	}
}

// TestPrintConfigIsTheMigrationPath turns an environment-configured deerd
// into a config file: the printed TOML carries the env's values, never the
// secret, and loads back to the same configuration.
func TestPrintConfigIsTheMigrationPath(t *testing.T) {
	env := cleanEnv(t, "DEER_MAX_WORKERS=50", "DEER_ADMIN_TOKEN=s3cret", "DEER_BATCH_TIMEOUT=2.5")
	res := runDeerd(t, repoRoot, env, "--print-config")
	if res.code != 0 {
		t.Fatalf("--print-config exit %d:\n%s", res.code, res.output())
	}
	printed := res.stdout
	for _, want := range []string{"max_workers = 50", "batch_timeout = 2.5", `admin_token = "<redacted>"`, "[upstreams.sim]"} {
		if !strings.Contains(printed, want) {
			t.Errorf("printed configuration lacks %q:\n%s", want, printed)
		}
	}
	if strings.Contains(res.output(), "s3cret") {
		t.Fatalf("--print-config shows the admin token:\n%s", res.output())
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "migrated.toml")
	if err := os.WriteFile(file, []byte(printed), 0o600); err != nil {
		t.Fatal(err)
	}
	// As printed, the placeholder is refused: the redacted output cannot be
	// deployed by mistake with a publicly known token ...
	res = runDeerd(t, dir, cleanEnv(t), "--config", file, "--check-config")
	if res.code != 1 || !strings.Contains(res.output(), "server.admin_token") {
		t.Errorf("the redacted token was not refused naming server.admin_token (exit %d):\n%s", res.code, res.output())
	}
	// ... unless DEER_ADMIN_TOKEN supplies the real one, which wins over the file.
	res = runDeerd(t, dir, cleanEnv(t, "DEER_ADMIN_TOKEN=s3cret"), "--config", file, "--check-config")
	if res.code != 0 {
		t.Errorf("printed file with DEER_ADMIN_TOKEN set: exit %d:\n%s", res.code, res.output())
	}
	// Without the token line the file stands on its own.
	var kept []string
	for _, line := range strings.Split(printed, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "admin_token") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(file, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runDeerd(t, dir, cleanEnv(t), "--config", file, "--check-config")
	if res.code != 0 {
		t.Fatalf("migrated file: exit %d:\n%s", res.code, res.output())
	}
	// The file alone (plus the token in the env) is the configuration the
	// env vars gave: printing it again gives the same text.
	again := runDeerd(t, dir, cleanEnv(t, "DEER_ADMIN_TOKEN=s3cret"), "--config", file, "--print-config")
	if again.code != 0 {
		t.Fatalf("printing the migrated file: exit %d:\n%s", again.code, again.output())
	}
	if strip(again.stdout) != strip(printed) {
		t.Errorf("the migrated file loads to a different configuration:\n--- from env\n%s\n--- from file\n%s", printed, again.stdout)
	}
	// Without a token anywhere, none is shown (not even the placeholder).
	none := runDeerd(t, dir, cleanEnv(t), "--config", file, "--print-config")
	if none.code != 0 || strings.Contains(none.stdout, conf.RedactedValue) {
		t.Errorf("printing without a token: exit %d:\n%s", none.code, none.output())
	}
}

// strip drops the l3_path line, which cleanEnv sets to a new directory for
// every run.
func strip(toml string) string {
	var out []string
	for _, line := range strings.Split(toml, "\n") {
		if !strings.HasPrefix(line, "l3_path") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	s := startDeerd(t, cleanEnv(t), "--config", upstreamConfig(t))

	// /health: every SPEC §4 field, with the states the SPEC allows.
	doc := s.getJSON("/health", http.StatusOK)
	if st := at(t, doc, "status"); st != "healthy" {
		t.Errorf("status = %v, want healthy: %v", st, doc)
	}
	if _, ok := at(t, doc, "timestamp").(float64); !ok {
		t.Errorf("timestamp is not a number: %v", doc["timestamp"])
	}
	for _, k := range []string{"advanced_optimization", "collaboration", "debug_mode"} {
		if _, ok := at(t, doc, "configuration."+k).(bool); !ok {
			t.Errorf("configuration.%s is not a boolean", k)
		}
	}
	for _, k := range []string{"connection_pool", "request_queue", "batch_processor"} {
		if v := at(t, doc, "components."+k); v != "healthy" {
			t.Errorf("components.%s = %v, want healthy", k, v)
		}
	}
	for _, k := range []string{"parallel_executor", "rate_limiter", "memory_manager", "error_recovery"} {
		if v := at(t, doc, "advanced_components."+k); v != "active" {
			t.Errorf("advanced_components.%s = %v, want active", k, v)
		}
	}
	if _, ok := at(t, doc, "actors.http").(map[string]any); !ok {
		t.Errorf("deerd's http actor is not in /health")
	}
	if resp, body := s.do(http.MethodGet, "/health/live", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/health/live = %d: %s", resp.StatusCode, body)
	}

	// A live configuration change reaches the router and shows everywhere.
	workers := func() any {
		return at(t, s.getJSON("/metrics", http.StatusOK), "advanced_optimizations.parallel_executor.workers")
	}
	if w := workers(); w != 20.0 {
		t.Errorf("workers at start = %v, want 20", w)
	}
	resp, body := s.do(http.MethodPost, "/config", `{"parallel_execution": {"max_workers": 5}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config = %d: %s", resp.StatusCode, body)
	}
	answer := decode(t, body)
	if at(t, answer, "status") != "success" || at(t, answer, "updated_configuration.parallel_execution.max_workers") != 5.0 {
		t.Errorf("POST /config answered %s", body)
	}
	if w := workers(); w != 5.0 {
		t.Errorf("/metrics workers after the update = %v, want 5", w)
	}
	if got := at(t, s.getJSON("/config", http.StatusOK), "configuration.parallel_execution.max_workers"); got != 5.0 {
		t.Errorf("GET /config max_workers = %v, want 5", got)
	}
	resp, body = s.do(http.MethodGet, "/metrics", "", "Accept", "text/plain")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "deer_workers 5") {
		t.Errorf("Prometheus /metrics (%d) lacks deer_workers 5", resp.StatusCode)
	}

	// A bad update is refused, naming the key, and changes nothing.
	resp, body = s.do(http.MethodPost, "/config", `{"parallel_execution": {"max_workers": 3, "max_wrokers": 4}}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad POST /config = %d, want 400: %s", resp.StatusCode, body)
	}
	bad := decode(t, body)
	if f := at(t, bad, "error.field"); f != "parallel_execution.max_wrokers" {
		t.Errorf("error.field = %v, want parallel_execution.max_wrokers: %s", f, body)
	}
	if msg, _ := at(t, bad, "error.message").(string); !strings.Contains(msg, "parallel_execution.max_wrokers") {
		t.Errorf("error.message does not name the key: %s", body)
	}
	if w := workers(); w != 5.0 {
		t.Errorf("workers after a refused update = %v, want 5", w)
	}

	// debug_mode switched on live: /debug/pprof opens, the logs stay JSON
	// (the format is chosen at start; the level follows).
	if resp, body := s.do(http.MethodGet, "/debug/pprof/cmdline", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/debug/pprof outside debug_mode = %d: %s", resp.StatusCode, body)
	}
	if resp, body := s.do(http.MethodPost, "/config", `{"debug_mode": true}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config debug_mode = %d: %s", resp.StatusCode, body)
	}
	if resp, body := s.do(http.MethodGet, "/debug/pprof/cmdline", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/pprof in debug_mode = %d: %s", resp.StatusCode, body)
	}
	if v := at(t, s.getJSON("/health", http.StatusOK), "configuration.debug_mode"); v != true {
		t.Errorf("/health configuration.debug_mode = %v after switching it on", v)
	}

	// SIGTERM: a clean exit, with JSON logs and no dead-letter noise.
	res := s.stop()
	if res.code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", res.code)
	}
	checkLogs(t, res.stderr, "deerd listening", "shutting down", "tasks drained", "stopped")
	checkShutdownOnce(t, res.stderr)
	if res.stdout != "" {
		t.Errorf("deerd wrote to stdout while serving:\n%s", res.stdout)
	}
}

// checkShutdownOnce checks that no line from "shutting down" on is logged
// twice (by the same actor, for the same upstream): deerd and the runtime
// it stops both take part in the shutdown, and each step is said once.
// Per-task lines are left out (each names its own task).
func checkShutdownOnce(t *testing.T, stderr string) {
	t.Helper()
	seen, shutting := map[string]int{}, false
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		var rec struct {
			Message, Actor, Upstream, Task string
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Task != "" {
			continue
		}
		shutting = shutting || rec.Message == "shutting down"
		if !shutting {
			continue
		}
		key := strings.TrimSpace(rec.Message + " " + rec.Actor + " " + rec.Upstream)
		if seen[key]++; seen[key] == 2 {
			t.Errorf("logged twice during shutdown: %q:\n%s", key, stderr)
		}
	}
	if !shutting {
		t.Errorf("no \"shutting down\" line:\n%s", stderr)
	}
}

// checkLogs checks that every stderr line is a zerolog JSON object with a
// level and a message, that nothing was logged at error level or by the
// actor library's dead-letter logger, and that the wanted messages appear.
func checkLogs(t *testing.T, stderr string, want ...string) {
	t.Helper()
	if strings.Contains(stderr, "[DeadLetter]") {
		t.Errorf("dead-letter lines in the log")
	}
	if strings.Contains(stderr, "DATA RACE") {
		t.Errorf("the race detector reported a race in deerd")
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON (%v): %s", i+1, err, line)
			continue
		}
		level, _ := rec["level"].(string)
		msg, ok := rec["message"].(string)
		if level == "" || !ok {
			t.Errorf("log line %d lacks level or message: %s", i+1, line)
		}
		if level == "error" || level == "fatal" || level == "panic" {
			t.Errorf("log line %d is an error: %s", i+1, line)
		}
		seen[msg] = true
	}
	for _, m := range want {
		if !seen[m] {
			t.Errorf("no log line %q in:\n%s", m, stderr)
		}
	}
}

func TestAdvancedOptimizationOffShowsDisabled(t *testing.T) {
	t.Parallel()
	s := startDeerd(t, cleanEnv(t, "DEER_ADVANCED_OPTIMIZATION=false"), "--config", upstreamConfig(t))
	doc := s.getJSON("/health", http.StatusOK)
	for _, k := range []string{"parallel_executor", "rate_limiter", "memory_manager", "error_recovery"} {
		if v := at(t, doc, "advanced_components."+k); v != "disabled" {
			t.Errorf("advanced_components.%s = %v, want disabled", k, v)
		}
	}
	if v := at(t, doc, "configuration.advanced_optimization"); v != false {
		t.Errorf("configuration.advanced_optimization = %v, want false", v)
	}
	// The plain pool with batching stays on.
	for _, k := range []string{"connection_pool", "request_queue", "batch_processor"} {
		if v := at(t, doc, "components."+k); v != "healthy" {
			t.Errorf("components.%s = %v, want healthy", k, v)
		}
	}
	if st := at(t, doc, "status"); st != "healthy" {
		t.Errorf("status = %v, want healthy", st)
	}
	// Ctrl-C stops it as cleanly as SIGTERM.
	res := s.signal(os.Interrupt)
	if res.code != 0 {
		t.Errorf("exit code after SIGINT = %d, want 0:\n%s", res.code, res.stderr)
	}
	checkLogs(t, res.stderr, "deerd listening", "shutting down", "stopped")
}

// TestDebugModeLogsToTheConsole: with debug_mode on at start, deerd writes
// human-readable console logs at debug level and serves /debug/pprof.
func TestDebugModeLogsToTheConsole(t *testing.T) {
	t.Parallel()
	s := startDeerd(t, cleanEnv(t, "DEER_DEBUG_MODE=true"), "--config", upstreamConfig(t))
	if resp, body := s.do(http.MethodGet, "/debug/pprof/", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/pprof/ = %d: %s", resp.StatusCode, body)
	}
	res := s.stop()
	if res.code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0:\n%s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
	for _, line := range lines {
		if json.Valid([]byte(line)) {
			t.Errorf("a JSON line in debug mode: %s", line)
		}
	}
	for _, want := range []string{"DBG", "INF", "deerd listening", "stopped"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("console log lacks %q:\n%s", want, res.stderr)
		}
	}
	if strings.Contains(res.stderr, "[DeadLetter]") || strings.Contains(res.stderr, "DATA RACE") {
		t.Errorf("dead letters or races in the log:\n%s", res.stderr)
	}
}

func TestSecondDeerdOnTakenAddressRefusesToStart(t *testing.T) {
	t.Parallel()
	first := startDeerd(t, cleanEnv(t), "--config", upstreamConfig(t))
	second := launch(t, first.addr, cleanEnv(t), "--config", upstreamConfig(t))
	res := second.wait(shutdownGrace)
	if res.code == 0 {
		t.Fatalf("the second deerd exited 0 on a taken address:\n%s", res.output())
	}
	if !strings.Contains(res.stderr, first.addr) {
		t.Errorf("the error does not name the address %s:\n%s", first.addr, res.stderr)
	}
	checkLogLines(t, res.stderr)
	// The first one is unharmed.
	if resp, body := first.do(http.MethodGet, "/health/ready", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("first deerd after the second failed: %d %s", resp.StatusCode, body)
	}
	if res := first.stop(); res.code != 0 {
		t.Errorf("first deerd exit code = %d:\n%s", res.code, res.stderr)
	}
}

// checkLogLines checks only that every line is JSON with level and message.
func checkLogLines(t *testing.T, stderr string) {
	t.Helper()
	for i, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		var rec struct{ Level, Message string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level == "" || rec.Message == "" {
			t.Errorf("log line %d is not a JSON log record: %s", i+1, line)
		}
	}
}

// TestAddressHeldByAnotherProgram covers the plain case: any listener, not
// only another deerd.
func TestAddressHeldByAnotherProgram(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	res := runDeerd(t, t.TempDir(), cleanEnv(t), "--addr", ln.Addr().String())
	if res.code == 0 || !strings.Contains(res.stderr, ln.Addr().String()) {
		t.Errorf("exit %d, want non-zero naming %s:\n%s", res.code, ln.Addr(), res.output())
	}
}

// TestUpstreamRateLimitAndEnvTypos: a misspelled DEER_* variable is
// warned about once at start and changes nothing; an upstream's
// rate_limit table reaches its limiter, shows in GET /config and changes
// live through POST /config, while the rest of the upstream does not.
func TestUpstreamRateLimitAndEnvTypos(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)
	cfg := writeFile(t, "deer.toml", `[upstreams.up]
base_url = "`+up.URL+`"
[upstreams.up.rate_limit]
max_rate = 400.0
`)
	s := startDeerd(t, cleanEnv(t, "DEER_MAX_WORKRS=5"), "--config", cfg)

	var warned int
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var rec struct{ Level, Env, Message string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Env == "DEER_MAX_WORKRS" {
			warned++
			if rec.Level != "warn" || rec.Message != "unknown variable DEER_MAX_WORKRS is ignored (did you mean DEER_MAX_WORKERS?)" {
				t.Errorf("warning: %s", line)
			}
		}
	}
	if warned != 1 {
		t.Errorf("%d warnings about DEER_MAX_WORKRS, want 1:\n%s", warned, s.stderr)
	}
	limiter := func() map[string]any {
		return at(t, s.getJSON("/metrics", http.StatusOK), "advanced_optimizations.rate_limiter.upstreams.up").(map[string]any)
	}
	if w := at(t, s.getJSON("/metrics", http.StatusOK), "advanced_optimizations.parallel_executor.workers"); w != 20.0 {
		t.Errorf("workers = %v, want the default 20: the misspelled variable must not apply", w)
	}
	if l := limiter(); l["max_rate"] != 400.0 || l["min_rate"] != 1.0 {
		t.Errorf("limiter/up: %v, want max_rate 400 from the upstream, min_rate 1 from rate_limit", l)
	}
	if got := at(t, s.getJSON("/config", http.StatusOK), "configuration.upstreams.up.rate_limit"); !reflect.DeepEqual(got, map[string]any{"max_rate": 400.0}) {
		t.Errorf("GET /config upstreams.up.rate_limit = %v", got)
	}

	if resp, body := s.do(http.MethodPost, "/config", `{"upstreams": {"up": {"rate_limit": {"max_rate": 600, "burst_allowance": 70}}}}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config upstreams.up.rate_limit = %d: %s", resp.StatusCode, body)
	}
	if l := limiter(); l["max_rate"] != 600.0 || l["burst_allowance"] != 70.0 {
		t.Errorf("limiter/up after POST /config: %v", l)
	}
	resp, body := s.do(http.MethodPost, "/config", `{"upstreams": {"up": {"timeout": 5}}}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "requires a restart") {
		t.Errorf("POST /config upstreams.up.timeout = %d: %s", resp.StatusCode, body)
	}

	res := s.stop()
	if res.code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", res.code)
	}
	checkLogs(t, res.stderr, "shutting down", "tasks drained", "stopped")
	checkShutdownOnce(t, res.stderr)
}
