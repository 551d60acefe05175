package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
)

// testConfig is the defaults plus one upstream at a real local HTTP server,
// with the L3 store in a temporary directory.
func testConfig(t testing.TB) *conf.Config {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(up.Close)
	cfg := conf.Default()
	cfg.Cache.L3Path = t.TempDir()
	cfg.ConnectionPool.InitialConnections = 2
	cfg.Upstreams = map[string]conf.Upstream{
		"sim": {BaseURL: up.URL, Cache: "auto", Batch: "openai-embeddings", Timeout: 60, Models: []string{"sim-model"}},
	}
	return cfg
}

type harness struct {
	t   testing.TB
	rt  *deer.Runtime
	srv *httptest.Server
	clk *clock.Fake
}

// start runs a runtime and its HTTP API on loopback; opts are added to the
// runtime's options.
func start(t testing.TB, cfg *conf.Config, opts ...deer.Option) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	counters := &httpapi.Counters{}
	log := zerolog.New(io.Discard)
	opts = append([]deer.Option{
		deer.WithClock(clk),
		deer.WithLogger(log, nil),
		deer.WithActor("http", httpapi.ActorProps(cfg.Server.Addr, counters, func() bool { return false }, log)),
	}, opts...)
	rt, err := deer.Start(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	srv := httptest.NewServer(httpapi.New(rt, counters, log))
	t.Cleanup(func() {
		srv.Close()
		if err := rt.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &harness{t: t, rt: rt, srv: srv, clk: clk}
}

func (h *harness) do(method, path, body string, header ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

// getJSON fetches path and decodes the body into a generic document.
func (h *harness) getJSON(path string, wantStatus int) map[string]any {
	h.t.Helper()
	resp, body := h.do(http.MethodGet, path, "")
	if resp.StatusCode != wantStatus {
		h.t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	return decode(h.t, body)
}

func decode(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	return doc
}

// at walks a dotted path through a decoded document.
func at(t testing.TB, doc map[string]any, path string) any {
	t.Helper()
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: %q is not an object", path, k)
		}
		cur, ok = m[k]
		if !ok {
			t.Fatalf("missing field %s", path)
		}
	}
	return cur
}

func TestHealthHasEveryField(t *testing.T) {
	h := start(t, testConfig(t))
	doc := h.getJSON("/health", http.StatusOK)
	if s := at(t, doc, "status"); s != "healthy" {
		t.Errorf("status = %v, want healthy; %v", s, doc)
	}
	if _, ok := at(t, doc, "timestamp").(float64); !ok {
		t.Errorf("timestamp is not a number")
	}
	for _, k := range []string{"advanced_optimization", "collaboration", "debug_mode"} {
		if _, ok := at(t, doc, "configuration."+k).(bool); !ok {
			t.Errorf("configuration.%s is not a bool", k)
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
	actors := at(t, doc, "actors").(map[string]any)
	for _, name := range []string{"router", "worker/1", "worker/20", "pool/sim", "limiter/sim", "batch/sim",
		"cache/l1", "cache/l2", "cache/l3", "metrics", "http"} {
		if _, ok := actors[name]; !ok {
			t.Errorf("actor %s missing from /health actors", name)
		}
	}
	var breakers int
	for name := range actors {
		if strings.HasPrefix(name, "breaker/sim/") {
			breakers++
		}
	}
	if breakers != 1 {
		t.Errorf("breakers for sim = %d, want 1", breakers)
	}

	for _, path := range []string{"/health/live", "/health/ready"} {
		if resp, body := h.do(http.MethodGet, path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d: %s", path, resp.StatusCode, body)
		}
	}
}

func TestMetricsHasEveryField(t *testing.T) {
	h := start(t, testConfig(t))
	doc := h.getJSON("/metrics", http.StatusOK)
	numbers := []string{
		"timestamp",
		"connection_pool.active_connections", "connection_pool.max_connections", "connection_pool.utilization",
		"connection_pool.total_acquired", "connection_pool.total_released", "connection_pool.peak_usage",
		"request_queue.size", "request_queue.max_size",
		"advanced_optimizations.parallel_executor.active_tasks", "advanced_optimizations.parallel_executor.workers",
		"advanced_optimizations.parallel_executor.queued",
		"advanced_optimizations.rate_limiter.current_rate",
		"advanced_optimizations.memory_manager.cache_stats.l1_hits", "advanced_optimizations.memory_manager.cache_stats.l2_hits",
		"advanced_optimizations.memory_manager.cache_stats.l3_hits", "advanced_optimizations.memory_manager.cache_stats.misses",
	}
	for _, p := range numbers {
		if _, ok := at(t, doc, p).(float64); !ok {
			t.Errorf("%s is not a number", p)
		}
	}
	strs := map[string]string{
		"advanced_optimizations.parallel_executor.status":             "active",
		"advanced_optimizations.rate_limiter.status":                  "active",
		"advanced_optimizations.memory_manager.status":                "active",
		"advanced_optimizations.error_recovery.status":                "active",
		"advanced_optimizations.error_recovery.circuit_breaker_state": "closed",
	}
	for p, want := range strs {
		if got := at(t, doc, p); got != want {
			t.Errorf("%s = %v, want %q", p, got, want)
		}
	}
	for _, p := range []string{"system_info.go_version", "system_info.platform"} {
		if s, ok := at(t, doc, p).(string); !ok || s == "" {
			t.Errorf("%s = %v, want a non-empty string", p, at(t, doc, p))
		}
	}
	// Live values, not placeholders: they come from the actors' own state.
	if got := at(t, doc, "advanced_optimizations.parallel_executor.workers"); got != 20.0 {
		t.Errorf("workers = %v, want 20", got)
	}
	if got := at(t, doc, "connection_pool.max_connections"); got != 50.0 {
		t.Errorf("max_connections = %v, want 50", got)
	}
	if got := at(t, doc, "advanced_optimizations.rate_limiter.current_rate"); got != 10.0 {
		t.Errorf("current_rate = %v, want 10", got)
	}
	if got := at(t, doc, "request_queue.max_size"); got != 1000.0 {
		t.Errorf("request_queue.max_size = %v, want 1000", got)
	}
}

func TestConfigUpdateReachesTheOwningActor(t *testing.T) {
	h := start(t, testConfig(t))
	resp, body := h.do(http.MethodPost, "/config", `{"parallel_execution": {"max_workers": 5}, "rate_limit": {"initial_rate": 20}, "cache": {"l1_size": 7}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config = %d: %s", resp.StatusCode, body)
	}
	doc := decode(t, body)
	if at(t, doc, "status") != "success" || at(t, doc, "updated_configuration.parallel_execution.max_workers") != 5.0 {
		t.Errorf("unexpected answer: %s", body)
	}
	cfg := h.getJSON("/config", http.StatusOK)
	if got := at(t, cfg, "configuration.parallel_execution.max_workers"); got != 5.0 {
		t.Errorf("GET /config max_workers = %v, want 5", got)
	}
	m := h.getJSON("/metrics", http.StatusOK)
	if got := at(t, m, "advanced_optimizations.parallel_executor.workers"); got != 5.0 {
		t.Errorf("/metrics workers = %v, want 5", got)
	}
	if got := at(t, m, "advanced_optimizations.rate_limiter.current_rate"); got != 20.0 {
		t.Errorf("/metrics current_rate = %v, want 20", got)
	}
	if got := at(t, m, "advanced_optimizations.memory_manager.tiers.l1.capacity"); got != 7.0 {
		t.Errorf("l1 capacity = %v, want 7", got)
	}
	health := h.getJSON("/health", http.StatusOK)
	var workers int
	for name := range at(t, health, "actors").(map[string]any) {
		if strings.HasPrefix(name, "worker/") {
			workers++
		}
	}
	if workers != 5 {
		t.Errorf("/health lists %d workers, want 5", workers)
	}
	// Growing back spawns workers again.
	if resp, body := h.do(http.MethodPost, "/config", `{"parallel_execution": {"max_workers": 8}}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config = %d: %s", resp.StatusCode, body)
	}
	if got := at(t, h.getJSON("/metrics", http.StatusOK), "advanced_optimizations.parallel_executor.workers"); got != 8.0 {
		t.Errorf("/metrics workers = %v, want 8", got)
	}
}

func TestBadConfigUpdatesChangeNothing(t *testing.T) {
	h := start(t, testConfig(t))
	_, before := h.do(http.MethodGet, "/config", "")
	cases := []struct {
		name, body, field string
	}{
		{"unknown key", `{"batch_processing": {"batch_sizee": 15}}`, "batch_processing.batch_sizee"},
		{"unknown section", `{"nope": {"x": 1}}`, "nope"},
		{"wrong type", `{"parallel_execution": {"max_workers": "five"}}`, "parallel_execution.max_workers"},
		{"fraction for integer", `{"parallel_execution": {"max_workers": 10.5}}`, "parallel_execution.max_workers"},
		{"out of range", `{"parallel_execution": {"max_workers": 0}}`, "parallel_execution.max_workers"},
		{"cross-field", `{"rate_limit": {"min_rate": 500}}`, "rate_limit.min_rate"},
		{"bad policy", `{"cache": {"eviction_policy": "random"}}`, "cache.eviction_policy"},
		{"restart only", `{"server": {"addr": "0.0.0.0:9"}}`, "server.addr"},
		{"half valid", `{"batch_processing": {"batch_size": 15}, "cache": {"l1_size": -1}}`, "cache.l1_size"},
		{"not JSON", `{"batch_processing": `, ""},
		{"not an object", `[1,2]`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(http.MethodPost, "/config", tc.body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, body)
			}
			doc := decode(t, body)
			if code := at(t, doc, "error.code"); code != "invalid_config" {
				t.Errorf("code = %v", code)
			}
			if tc.field != "" {
				if f, _ := doc["error"].(map[string]any)["field"].(string); f != tc.field {
					t.Errorf("field = %q, want %q (%s)", f, tc.field, body)
				}
				if msg := at(t, doc, "error.message").(string); !strings.Contains(msg, tc.field) {
					t.Errorf("message %q does not name %s", msg, tc.field)
				}
			}
		})
	}
	_, after := h.do(http.MethodGet, "/config", "")
	if stripTimestamp(t, before) != stripTimestamp(t, after) {
		t.Errorf("configuration changed after refused updates:\nbefore %s\nafter %s", before, after)
	}
	if got := at(t, h.getJSON("/metrics", http.StatusOK), "advanced_optimizations.parallel_executor.workers"); got != 20.0 {
		t.Errorf("workers = %v after refused updates, want 20", got)
	}
}

func stripTimestamp(t testing.TB, body []byte) string {
	doc := decode(t, body)
	delete(doc, "timestamp")
	b, _ := json.Marshal(doc)
	return string(b)
}

func TestConfigBodyOver64KiBIsRefused(t *testing.T) {
	h := start(t, testConfig(t))
	big := `{"batch_processing": {"batch_size": 15}, "pad": "` + strings.Repeat("x", 70<<10) + `"}`
	resp, body := h.do(http.MethodPost, "/config", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", resp.StatusCode, body)
	}
	if got := at(t, h.getJSON("/config", http.StatusOK), "configuration.batch_processing.batch_size"); got != 10.0 {
		t.Errorf("batch_size = %v, want 10 (unchanged)", got)
	}
}

func TestResetReturnsToStartupConfiguration(t *testing.T) {
	cfg := testConfig(t)
	cfg.BatchProcessing.BatchSize = 12 // the startup value differs from the built-in default
	h := start(t, cfg)
	if resp, body := h.do(http.MethodPost, "/config", `{"batch_processing": {"batch_size": 15}, "parallel_execution": {"max_workers": 3}}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config = %d: %s", resp.StatusCode, body)
	}
	resp, body := h.do(http.MethodPost, "/config/reset", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset = %d: %s", resp.StatusCode, body)
	}
	doc := decode(t, body)
	if at(t, doc, "status") != "success" || at(t, doc, "default_configuration.batch_processing.batch_size") != 12.0 {
		t.Errorf("unexpected reset answer: %s", body)
	}
	if got := at(t, h.getJSON("/metrics", http.StatusOK), "advanced_optimizations.parallel_executor.workers"); got != 20.0 {
		t.Errorf("workers after reset = %v, want 20", got)
	}
	resp, body = h.do(http.MethodPost, "/config/reset?to=builtin", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset builtin = %d: %s", resp.StatusCode, body)
	}
	if got := at(t, h.getJSON("/config", http.StatusOK), "configuration.batch_processing.batch_size"); got != 10.0 {
		t.Errorf("batch_size after builtin reset = %v, want 10", got)
	}
	if _, ok := at(t, h.getJSON("/config", http.StatusOK), "configuration.upstreams").(map[string]any)["sim"]; !ok {
		t.Errorf("builtin reset dropped the upstreams, which need a restart to change")
	}
}

func TestAdvancedOptimizationOffShowsDisabled(t *testing.T) {
	env := map[string]string{"DEER_ADVANCED_OPTIMIZATION": "false"}
	cfg, err := conf.Load(conf.LoadOptions{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t)
	cfg.Upstreams, cfg.DefaultUpstream, cfg.Cache.L3Path = base.Upstreams, base.DefaultUpstream, base.Cache.L3Path
	h := start(t, cfg)
	doc := h.getJSON("/health", http.StatusOK)
	for _, k := range []string{"parallel_executor", "rate_limiter", "memory_manager", "error_recovery"} {
		if v := at(t, doc, "advanced_components."+k); v != "disabled" {
			t.Errorf("advanced_components.%s = %v, want disabled", k, v)
		}
	}
	if at(t, doc, "configuration.advanced_optimization") != false {
		t.Errorf("configuration.advanced_optimization should be false")
	}
	if at(t, doc, "components.request_queue") != "healthy" {
		t.Errorf("the plain worker pool should stay healthy")
	}
	m := h.getJSON("/metrics", http.StatusOK)
	if got := at(t, m, "advanced_optimizations.rate_limiter.status"); got != "disabled" {
		t.Errorf("rate_limiter.status = %v, want disabled", got)
	}
	// Switching it back on live activates them.
	if resp, body := h.do(http.MethodPost, "/config", `{"enable_advanced_optimization": true}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config = %d: %s", resp.StatusCode, body)
	}
	if v := at(t, h.getJSON("/health", http.StatusOK), "advanced_components.memory_manager"); v != "active" {
		t.Errorf("memory_manager after enabling = %v, want active", v)
	}
}

func TestPrometheusByContentNegotiation(t *testing.T) {
	h := start(t, testConfig(t))
	scraper := "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	for _, tc := range []struct {
		path, accept string
		prom         bool
	}{
		{"/metrics", scraper, true},
		{"/metrics", "text/plain", true},
		{"/metrics", "*/*", false},
		{"/metrics", "", false},
		{"/metrics", "application/json", false},
		{"/metrics/prometheus", "application/json", true},
	} {
		resp, body := h.do(http.MethodGet, tc.path, "", "Accept", tc.accept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s (%s) = %d", tc.path, tc.accept, resp.StatusCode)
		}
		isProm := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain")
		if isProm != tc.prom {
			t.Errorf("%s Accept %q: Prometheus = %v, want %v", tc.path, tc.accept, isProm, tc.prom)
		}
		if isProm {
			for _, name := range []string{"deer_workers 20", `deer_ratelimit_rate{upstream="sim"} 10`, `deer_pool_max_connections{upstream="sim"} 50`, "deer_queue_size 0"} {
				if !bytes.Contains(body, []byte(name)) {
					t.Errorf("Prometheus text lacks %q", name)
				}
			}
		}
	}
}

func TestMetricsHistoryKeepsSnapshotsForRetention(t *testing.T) {
	cfg := testConfig(t)
	cfg.Monitoring.ExportInterval = 10
	cfg.Monitoring.MetricsRetention = 30
	h := start(t, cfg)
	count := func() int {
		return len(at(t, h.getJSON("/metrics/history", http.StatusOK), "snapshots").([]any))
	}
	if n := count(); n != 0 {
		t.Fatalf("history before the first export = %d snapshots", n)
	}
	// Each advance fires one export; wait for its snapshot to land.
	for i := 1; i <= 5; i++ {
		h.clk.Advance(10 * time.Second)
		want := min(i, 4) // 30 s of retention at 10 s intervals keeps the last 4 (inclusive cutoff)
		actortest.Eventually(t, fmt.Sprintf("history to hold %d snapshots", want), func() bool { return count() == want })
	}
	snaps := at(t, h.getJSON("/metrics/history", http.StatusOK), "snapshots").([]any)
	first := snaps[0].(map[string]any)
	if _, ok := at(t, first, "metrics.advanced_optimizations.parallel_executor.workers").(float64); !ok {
		t.Errorf("a snapshot is not a /metrics document: %v", first)
	}
}

func TestAdminTokenRules(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.AdminToken = "s3cret"
	h := start(t, cfg)
	body := `{"batch_processing": {"batch_size": 15}}`
	if resp, b := h.do(http.MethodPost, "/config", body); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.do(http.MethodPost, "/config", body, "Authorization", "Bearer wrong"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong token: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.do(http.MethodPost, "/config/reset", "", "Authorization", "Bearer wrong"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("reset, wrong token: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.do(http.MethodPost, "/config", body, "Authorization", "Bearer s3cret"); resp.StatusCode != http.StatusOK {
		t.Errorf("right token: %d %s", resp.StatusCode, b)
	}
	// The token never leaves deerd.
	if _, b := h.do(http.MethodGet, "/config", ""); bytes.Contains(b, []byte("s3cret")) {
		t.Errorf("GET /config shows the admin token")
	}
}

func TestAdminEndpointsClosedOnNonLoopbackWithoutToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.Addr = "0.0.0.0:8000" // what deerd would listen on; the test server still uses loopback
	h := start(t, cfg)
	for _, path := range []string{"/config", "/config/reset"} {
		resp, b := h.do(http.MethodPost, path, `{}`)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s = %d, want 403: %s", path, resp.StatusCode, b)
		}
	}
	if resp, _ := h.do(http.MethodGet, "/config", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /config = %d, want 200", resp.StatusCode)
	}
}

func TestErrorsAreJSON(t *testing.T) {
	h := start(t, testConfig(t))
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "not_found"},
		{http.MethodDelete, "/config", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/config/reset?to=yesterday", http.StatusBadRequest, "invalid_parameter"},
	} {
		resp, body := h.do(tc.method, tc.path, "")
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if code := at(t, decode(t, body), "error.code"); code != tc.code {
			t.Errorf("%s %s code = %v, want %s", tc.method, tc.path, code, tc.code)
		}
	}
}

// crasher is a test actor that panics on an armed crash message (once: the
// supervisor redelivers it after the restart) and blocks on a channel it is
// sent, so tests can show a restarting and an unresponsive actor.
type crasher struct{}

type crash struct{ armed atomic.Bool }

func (crasher) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *crash:
		if m.armed.CompareAndSwap(true, false) {
			panic("crash requested by test")
		}
	case chan struct{}:
		<-m
	default:
		if ctx.Sender() != nil {
			answerAdmin(ctx)
		}
	}
}

func TestHealthShowsRestartingAndUnresponsiveActors(t *testing.T) {
	h := start(t, testConfig(t), deer.WithActor("crasher", actor.PropsFromProducer(func() actor.Actor { return crasher{} })))
	pid, ok := h.rt.Registry().PID("crasher")
	if !ok {
		t.Fatal("crasher not registered")
	}
	c := &crash{}
	c.armed.Store(true)
	h.rt.System().Root.Send(pid, c)
	// The restart waits on the fake clock: until it moves, /health shows it.
	actortest.Eventually(t,

		"crasher to show restarting", func() bool {
			return at(t, h.getJSON("/health", http.StatusOK), "actors.crasher.state") == "restarting"
		})

	doc := h.getJSON("/health", http.StatusOK)
	if doc["status"] != "degraded" {
		t.Errorf("status while an actor restarts = %v, want degraded", doc["status"])
	}
	h.clk.Advance(time.Minute)
	actortest.Eventually(t,

		"crasher to be back", func() bool {
			return at(t, h.getJSON("/health", http.StatusOK), "actors.crasher.state") == "healthy"
		})

	if r := at(t, h.getJSON("/health", http.StatusOK), "actors.crasher.restarts"); r != 1.0 {
		t.Errorf("restarts = %v, want 1", r)
	}

	// An actor that stops answering is reported, and /health does not hang.
	release := make(chan struct{})
	defer close(release)
	h.rt.System().Root.Send(pid, release)
	begin := time.Now()
	doc = h.getJSON("/health", http.StatusServiceUnavailable)
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("/health took %v with a stuck actor", took)
	}
	if got := at(t, doc, "actors.crasher.state"); got != "not_responding" {
		t.Errorf("stuck actor state = %v, want not_responding", got)
	}
	if doc["status"] != "unhealthy" {
		t.Errorf("status = %v, want unhealthy", doc["status"])
	}
	// /metrics answers too, naming the actor that did not.
	m := h.getJSON("/metrics", http.StatusOK)
	if un := at(t, m, "actors.unanswered").([]any); len(un) != 1 || un[0] != "crasher" {
		t.Errorf("unanswered = %v, want [crasher]", un)
	}
}
