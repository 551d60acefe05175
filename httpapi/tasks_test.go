package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/sim"
)

// client bounds every task-path request: a task the runtime never answers
// fails its test instead of hanging the suite.
var client = &http.Client{Timeout: 20 * time.Second}

// simUpstream serves a simulator on loopback for one test.
func simUpstream(t testing.TB, k sim.Knobs, opts ...sim.Option) (*sim.Simulator, string) {
	t.Helper()
	s := sim.New(k, opts...)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close) // runs first: hung requests end, so srv.Close returns
	return s, srv.URL
}

// simConfig is the defaults with one upstream "sim" at url listing
// sim-model and sim-embed, and, as in the shipped deer.toml, no
// default_upstream. Retries are off: their delays run on the harness's
// fake clock.
func simConfig(t testing.TB, url string) *conf.Config {
	t.Helper()
	cfg := conf.Default()
	cfg.Cache.L3Path = t.TempDir()
	cfg.ConnectionPool.InitialConnections = 1
	cfg.ErrorRecovery.MaxRetries = 0
	// The limiter's defaults (10 requests/s) would pace these tests, and on
	// the harness's fake clock its bucket never refills.
	cfg.RateLimit.InitialRate, cfg.RateLimit.MaxRate, cfg.RateLimit.BurstAllowance = 100000, 100000, 100000
	up := conf.NewUpstream(url)
	up.Models = []string{"sim-model", "sim-embed"}
	cfg.Upstreams = map[string]conf.Upstream{"sim": up}
	return cfg
}

// echoed is one request an echo upstream received.
type echoed struct {
	method, path, query string
	header              http.Header
	body                string
}

// echoUpstream answers every request with its own body (Content-Type
// application/json unless the request had another) and records it.
type echoUpstream struct {
	mu   sync.Mutex
	seen []echoed
	url  string
}

func newEchoUpstream(t testing.TB) *echoUpstream {
	t.Helper()
	e := &echoUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.seen = append(e.seen, echoed{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)})
		e.mu.Unlock()
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("X-Echo", "yes")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "connection-scoped")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// last returns the last request to path.
func (e *echoUpstream) last(t testing.TB, path string) echoed {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.seen) - 1; i >= 0; i-- {
		if e.seen[i].path == path {
			return e.seen[i]
		}
	}
	t.Fatalf("the echo upstream saw no request to %s (saw %d requests)", path, len(e.seen))
	return echoed{}
}

// send is harness.do with the bounded client.
func (h *harness) send(method, path, body string, header ...string) (*http.Response, []byte) {
	h.t.Helper()
	return sendTo(h.t, h.srv.URL, method, path, body, header...)
}

func sendTo(t testing.TB, base, method, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp, b
}

// wantError checks a SPEC §4 error answer.
func wantError(t testing.TB, resp *http.Response, body []byte, status int, code, field string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var doc struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("error answer is not JSON: %v: %s", err, body)
	}
	if doc.Error.Code != code {
		t.Errorf("error.code = %q, want %q (%s)", doc.Error.Code, code, body)
	}
	if doc.Error.Field != field {
		t.Errorf("error.field = %q, want %q (%s)", doc.Error.Field, field, body)
	}
	if doc.Error.Message == "" {
		t.Errorf("error.message is empty")
	}
}

func TestTaskRequestsAreValidated(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	cfg.Server.MaxBodyBytes = 4096
	h := start(t, cfg)
	valid := `"upstream": "sim", "path": "/search"`
	cases := []struct {
		name   string
		body   string
		header []string
		status int
		code   string
		field  string
	}{
		{"malformed JSON", `{"upstream": "sim",`, nil, 400, "invalid_json", ""},
		{"empty body", ``, nil, 400, "invalid_json", ""},
		{"not an object", `[1, 2]`, nil, 400, "invalid_json", ""},
		{"two values", `{` + valid + `} {}`, nil, 400, "invalid_json", ""},
		{"unknown field", `{` + valid + `, "bogus": 1}`, nil, 400, "unknown_field", "bogus"},
		{"upstream missing", `{"path": "/search"}`, nil, 400, "missing_field", "upstream"},
		{"upstream not a string", `{"upstream": 5, "path": "/search"}`, nil, 400, "invalid_type", "upstream"},
		{"unknown upstream", `{"upstream": "nope", "path": "/search"}`, nil, 404, "unknown_upstream", "upstream"},
		{"bad method", `{` + valid + `, "method": "TRACE"}`, nil, 400, "invalid_field", "method"},
		{"lowercase method", `{` + valid + `, "method": "get"}`, nil, 400, "invalid_field", "method"},
		{"path missing", `{"upstream": "sim"}`, nil, 400, "missing_field", "path"},
		{"relative path", `{"upstream": "sim", "path": "search"}`, nil, 400, "invalid_field", "path"},
		{"raw URL", `{"upstream": "sim", "path": "/http://evil.example/x"}`, nil, 400, "invalid_field", "path"},
		{"scheme-relative URL", `{"upstream": "sim", "path": "//evil.example/x"}`, nil, 400, "invalid_field", "path"},
		{"dot-dot", `{"upstream": "sim", "path": "/a/../b"}`, nil, 400, "invalid_field", "path"},
		{"escaped dot-dot", `{"upstream": "sim", "path": "/a/%2e%2E/b"}`, nil, 400, "invalid_field", "path"},
		{"space in path", `{"upstream": "sim", "path": "/a b"}`, nil, 400, "invalid_field", "path"},
		{"CRLF in path", `{"upstream": "sim", "path": "/a\r\nHost: x"}`, nil, 400, "invalid_field", "path"},
		{"headers not an object", `{` + valid + `, "headers": "X-A: 1"}`, nil, 400, "invalid_type", "headers"},
		{"header value not a string", `{` + valid + `, "headers": {"X-A": 1}}`, nil, 400, "invalid_type", "headers"},
		{"header injection CRLF", `{` + valid + `, "headers": {"X-A": "a\r\nX-Evil: 1"}}`, nil, 400, "header_injection", "headers.X-A"},
		{"header injection LF", `{` + valid + `, "headers": {"X-A": "a\nb"}}`, nil, 400, "header_injection", "headers.X-A"},
		{"header injection NUL", `{` + valid + `, "headers": {"X-A": "a\u0000b"}}`, nil, 400, "header_injection", "headers.X-A"},
		{"bad header name", `{` + valid + `, "headers": {"Bad Name": "x"}}`, nil, 400, "invalid_header", "headers.Bad Name"},
		{"header name with colon", `{` + valid + `, "headers": {"X-A:": "x"}}`, nil, 400, "invalid_header", "headers.X-A:"},
		{"Authorization", `{` + valid + `, "headers": {"Authorization": "Bearer stolen"}}`, nil, 400, "forbidden_header", "headers.Authorization"},
		{"host, any case", `{` + valid + `, "headers": {"host": "evil.example"}}`, nil, 400, "forbidden_header", "headers.host"},
		{"Content-Length", `{` + valid + `, "headers": {"Content-Length": "5"}}`, nil, 400, "forbidden_header", "headers.Content-Length"},
		{"Transfer-Encoding", `{` + valid + `, "headers": {"Transfer-Encoding": "chunked"}}`, nil, 400, "forbidden_header", "headers.Transfer-Encoding"},
		{"Connection", `{` + valid + `, "headers": {"Connection": "close"}}`, nil, 400, "forbidden_header", "headers.Connection"},
		{"deer's own header", `{` + valid + `, "headers": {"X-Deer-Priority": "0"}}`, nil, 400, "forbidden_header", "headers.X-Deer-Priority"},
		{"priority too high", `{` + valid + `, "priority": 3}`, nil, 400, "invalid_field", "priority"},
		{"priority negative", `{` + valid + `, "priority": -1}`, nil, 400, "invalid_field", "priority"},
		{"priority fraction", `{` + valid + `, "priority": 1.5}`, nil, 400, "invalid_field", "priority"},
		{"priority unknown name", `{` + valid + `, "priority": "urgent"}`, nil, 400, "invalid_field", "priority"},
		{"priority boolean", `{` + valid + `, "priority": true}`, nil, 400, "invalid_type", "priority"},
		{"cache unknown", `{` + valid + `, "cache": "sometimes"}`, nil, 400, "invalid_field", "cache"},
		{"cache not a string", `{` + valid + `, "cache": 1}`, nil, 400, "invalid_type", "cache"},
		{"timeout zero", `{` + valid + `, "timeout": 0}`, nil, 400, "invalid_field", "timeout"},
		{"timeout negative", `{` + valid + `, "timeout": -2}`, nil, 400, "invalid_field", "timeout"},
		{"timeout over worker_timeout", `{` + valid + `, "timeout": 301}`, nil, 400, "invalid_field", "timeout"},
		{"timeout a string", `{` + valid + `, "timeout": "10"}`, nil, 400, "invalid_type", "timeout"},
		{"async a string", `{` + valid + `, "async": "yes"}`, nil, 400, "invalid_type", "async"},
		{"async stream", `{` + valid + `, "async": true, "stream": true}`, nil, 400, "invalid_field", "stream"},
		{"body over max_body_bytes", `{` + valid + `, "body": "` + strings.Repeat("x", 5000) + `"}`, nil, 413, "body_too_large", ""},
		{"bad X-Deer-Priority", `{` + valid + `}`, []string{"X-Deer-Priority", "3"}, 400, "invalid_header", "X-Deer-Priority"},
		{"X-Deer-Priority name", `{` + valid + `}`, []string{"X-Deer-Priority", "urgent"}, 400, "invalid_header", "X-Deer-Priority"},
		{"bad X-Deer-Cache", `{` + valid + `}`, []string{"X-Deer-Cache", "never"}, 400, "invalid_header", "X-Deer-Cache"},
		{"Idempotency-Key too long", `{` + valid + `}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_header", "Idempotency-Key"},
		{"Idempotency-Key with a tab", `{` + valid + `}`, []string{"Idempotency-Key", "a\tb"}, 400, "invalid_header", "Idempotency-Key"},
		{"Idempotency-Key not ASCII", `{` + valid + `}`, []string{"Idempotency-Key", "clé"}, 400, "invalid_header", "Idempotency-Key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := sendTo(t, h.srv.URL, http.MethodPost, "/v1/tasks", tc.body, tc.header...)
			wantError(t, resp, body, tc.status, tc.code, tc.field)
			if tc.field != "" && !strings.Contains(string(body), strings.TrimPrefix(tc.field, "headers.")) {
				t.Errorf("the message does not name %s: %s", tc.field, body)
			}
		})
	}
	// The server keeps working.
	h.getJSON("/health", http.StatusOK)
	if resp, body := h.send(http.MethodGet, "/v1/models", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/models after the refusals = %d: %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ method, path, code string }{
		{http.MethodGet, "/v1/tasks/task_unknown", "unknown_task"},
		{http.MethodDelete, "/v1/tasks/task_unknown", "unknown_task"},
	} {
		resp, body := h.send(tc.method, tc.path, "")
		wantError(t, resp, body, http.StatusNotFound, tc.code, "id")
	}
	resp, body := h.send(http.MethodPut, "/v1/tasks", "{}")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "method_not_allowed", "")
}

func TestDrainingRefusesNewWork(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	api := httpapi.New(h.rt, nil, zerolog.New(io.Discard))
	api.SetDraining(true)
	srv := httptest.NewServer(api)
	defer srv.Close()

	resp, body := sendTo(t, srv.URL, http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/search", "body": {"query": "x"}}`)
	wantError(t, resp, body, http.StatusServiceUnavailable, "shutting_down", "")
	resp, body = sendTo(t, srv.URL, http.MethodPost, "/proxy/sim/search", `{"query": "x"}`)
	wantError(t, resp, body, http.StatusServiceUnavailable, "shutting_down", "")
	resp, body = sendTo(t, srv.URL, http.MethodPost, "/v1/chat/completions", chatBody("sim-model", "hi", false))
	wantOpenAIError(t, resp, body, http.StatusServiceUnavailable, "shutting_down", "")
	// Questions are still answered.
	if resp, body := sendTo(t, srv.URL, http.MethodGet, "/v1/models", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/models while draining = %d: %s", resp.StatusCode, body)
	}
	resp, body = sendTo(t, srv.URL, http.MethodGet, "/v1/tasks/task_unknown", "")
	wantError(t, resp, body, http.StatusNotFound, "unknown_task", "id")
}

// --- end to end: these need the router to execute tasks ---

// taskDoc is a /v1/tasks answer.
type taskDoc struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	UpstreamStatus int               `json:"upstream_status"`
	Headers        map[string]string `json:"headers"`
	Body           json.RawMessage   `json:"body"`
	Cache          string            `json:"cache"`
	Attempts       int               `json:"attempts"`
	QueueMS        *float64          `json:"queue_ms"`
	LatencyMS      *float64          `json:"latency_ms"`
	Error          *struct {
		Code, Message string
	} `json:"error"`
}

func decodeTask(t testing.TB, body []byte) taskDoc {
	t.Helper()
	var d taskDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("not a task answer: %v: %s", err, body)
	}
	return d
}

// searchResults is the simulator's /search answer.
type searchResults struct {
	Query   string `json:"query"`
	Results []struct {
		Title, URL string
	} `json:"results"`
}

func TestSyncTaskReturnsTheUpstreamAnswer(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	resp, body := h.send(http.MethodPost, "/v1/tasks",
		`{"upstream": "sim", "method": "POST", "path": "/search", "body": {"query": "deer runtime"}, "priority": "high", "timeout": 30}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	d := decodeTask(t, body)
	if d.Status != "succeeded" || d.UpstreamStatus != 200 || d.Error != nil {
		t.Fatalf("unexpected result: %s", body)
	}
	if !strings.HasPrefix(d.ID, "task_") || resp.Header.Get("X-Deer-Task-Id") != d.ID {
		t.Errorf("id %q, X-Deer-Task-Id %q", d.ID, resp.Header.Get("X-Deer-Task-Id"))
	}
	if d.Attempts != 1 || resp.Header.Get("X-Deer-Attempts") != "1" {
		t.Errorf("attempts %d, X-Deer-Attempts %q, want 1", d.Attempts, resp.Header.Get("X-Deer-Attempts"))
	}
	if d.Cache == "" || resp.Header.Get("X-Deer-Cache") != d.Cache {
		t.Errorf("cache %q, X-Deer-Cache %q", d.Cache, resp.Header.Get("X-Deer-Cache"))
	}
	if d.QueueMS == nil || d.LatencyMS == nil || *d.QueueMS < 0 || *d.LatencyMS < *d.QueueMS {
		t.Errorf("queue_ms %v, latency_ms %v", d.QueueMS, d.LatencyMS)
	}
	if !strings.HasPrefix(d.Headers["Content-Type"], "application/json") {
		t.Errorf("headers = %v, want the upstream's Content-Type", d.Headers)
	}
	var sr searchResults
	if err := json.Unmarshal(d.Body, &sr); err != nil || sr.Query != "deer runtime" || len(sr.Results) != sim.DefaultSearchResults {
		t.Errorf("body is not the upstream's JSON answer (%v): %s", err, d.Body)
	}

	// A string body is sent as it is; GET with a query works.
	resp, body = h.send(http.MethodPost, "/v1/tasks",
		`{"upstream": "sim", "path": "/search", "headers": {"Content-Type": "application/json"}, "body": "{\"query\": \"raw\", \"max_results\": 2}"}`)
	if d := decodeTask(t, body); resp.StatusCode != 200 || d.Status != "succeeded" || !strings.Contains(string(d.Body), `"raw"`) {
		t.Errorf("string body: %d %s", resp.StatusCode, body)
	}
	resp, body = h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "method": "GET", "path": "/search?q=get+me&max_results=1"}`, "X-Deer-Priority", "low")
	if d := decodeTask(t, body); resp.StatusCode != 200 || d.Status != "succeeded" || !strings.Contains(string(d.Body), `"get me"`) {
		t.Errorf("GET task: %d %s", resp.StatusCode, body)
	}
}

func TestFailedTaskIsAResultNotAnHTTPError(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	resp, body := h.send(http.MethodPost, "/v1/tasks",
		`{"upstream": "sim", "path": "/search", "headers": {"X-Sim-Status": "500"}, "body": {"query": "x"}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 with a failed result: %s", resp.StatusCode, body)
	}
	d := decodeTask(t, body)
	if d.Status != "failed" || d.Error == nil || d.Error.Code != "upstream_error" || d.UpstreamStatus != 500 {
		t.Errorf("unexpected result: %s", body)
	}
	// An upstream 4xx is an answer: the task succeeded.
	resp, body = h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/search", "body": {"query": ""}}`)
	if d := decodeTask(t, body); resp.StatusCode != 200 || d.Status != "succeeded" || d.UpstreamStatus != 400 {
		t.Errorf("upstream 400: %d %s", resp.StatusCode, body)
	}
	// /metrics counts both by outcome, and both are in the latency window
	// (their latencies are 0 on the harness's clock, which does not move).
	doc := h.getJSON("/metrics", http.StatusOK)
	for path, want := range map[string]float64{
		"tasks.total": 2, "tasks.by_outcome.succeeded": 1, "tasks.by_outcome.upstream_error": 1, "tasks.latency.count": 2,
	} {
		if got := at(t, doc, path); got != want {
			t.Errorf("/metrics %s = %v, want %v", path, got, want)
		}
	}
}

func TestAsyncTaskIsPolled(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	resp, body := h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/search", "body": {"query": "later"}, "async": true}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, body)
	}
	d := decodeTask(t, body)
	if d.Status != "queued" || d.ID == "" || resp.Header.Get("X-Deer-Task-Id") != d.ID {
		t.Fatalf("unexpected answer: %s (X-Deer-Task-Id %q)", body, resp.Header.Get("X-Deer-Task-Id"))
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/tasks/"+d.ID {
		t.Errorf("Location = %q", loc)
	}
	var final taskDoc
	actortest.Eventually(t, fmt.Sprintf(

		"task %s to finish", d.ID), func() bool {
		resp, body := h.send(http.MethodGet, "/v1/tasks/"+d.ID, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/tasks/%s = %d: %s", d.ID, resp.StatusCode, body)
		}
		final = decodeTask(t, body)
		switch final.Status {
		case "queued", "running":
			return false
		}
		return true
	})

	if final.Status != "succeeded" || final.ID != d.ID || !strings.Contains(string(final.Body), `"later"`) {
		t.Errorf("final state: %+v", final)
	}
	resp, body = h.send(http.MethodDelete, "/v1/tasks/"+d.ID, "")
	wantError(t, resp, body, http.StatusConflict, "task_finished", "id")
}

func TestRunningTaskIsCancelled(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	resp, body := h.send(http.MethodPost, "/v1/tasks",
		`{"upstream": "sim", "path": "/search", "headers": {"X-Sim-Fault": "hang"}, "body": {"query": "never"}, "async": true}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, body)
	}
	id := decodeTask(t, body).ID
	actortest.Eventually(t, "the call to reach the upstream", func() bool { return s.Stats().InFlight == 1 })
	if _, body := h.send(http.MethodGet, "/v1/tasks/"+id, ""); decodeTask(t, body).Status != "running" {
		t.Errorf("status while the upstream hangs: %s", body)
	}
	resp, body = h.send(http.MethodDelete, "/v1/tasks/"+id, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d: %s", resp.StatusCode, body)
	}
	if d := decodeTask(t, body); d.ID != id || d.Status != "cancelled" {
		t.Errorf("DELETE answered %s", body)
	}
	actortest.Eventually(t, "the upstream call to be abandoned", func() bool { return s.Stats().InFlight == 0 })
	// The answer comes once the worker has stopped, and tells the attempt
	// the call made.
	actortest.Eventually(t, "the cancelled task's result", func() bool {
		_, body = h.send(http.MethodGet, "/v1/tasks/"+id, "")
		return decodeTask(t, body).Status != "running"
	})
	if d := decodeTask(t, body); d.Status != "failed" || d.Error == nil || d.Error.Code != "cancelled" || d.Attempts != 1 {
		t.Errorf("after cancel: %s, want cancelled after 1 attempt", body)
	}
	resp, body = h.send(http.MethodDelete, "/v1/tasks/"+id, "")
	wantError(t, resp, body, http.StatusConflict, "task_finished", "id")
}

func TestIdempotencyKeyRepeatsTheFirstResult(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	task := `{"upstream": "sim", "path": "/search", "body": {"query": "once"}, "cache": "bypass"}`
	resp1, body1 := h.send(http.MethodPost, "/v1/tasks", task, "Idempotency-Key", "order-42")
	resp2, body2 := h.send(http.MethodPost, "/v1/tasks", task, "Idempotency-Key", "order-42")
	if resp1.StatusCode != 200 || resp2.StatusCode != 200 {
		t.Fatalf("statuses %d, %d: %s / %s", resp1.StatusCode, resp2.StatusCode, body1, body2)
	}
	d1, d2 := decodeTask(t, body1), decodeTask(t, body2)
	if d1.Status != "succeeded" || d1.ID != d2.ID || string(d1.Body) != string(d2.Body) {
		t.Errorf("the repeat is not the first result:\n%s\n%s", body1, body2)
	}
	if n := s.Stats().Requests["/search"]; n != 1 {
		t.Errorf("the upstream was called %d times, want 1", n)
	}
	_, body3 := h.send(http.MethodPost, "/v1/tasks", task, "Idempotency-Key", "order-43")
	if d3 := decodeTask(t, body3); d3.ID == d1.ID || s.Stats().Requests["/search"] != 2 {
		t.Errorf("another key should call again: %s (upstream calls %d)", body3, s.Stats().Requests["/search"])
	}
}

func TestStreamedTaskIsRelayedAsItArrives(t *testing.T) {
	k := sim.DefaultKnobs()
	k.StreamInterval = 0
	_, url := simUpstream(t, k)
	h := start(t, simConfig(t, url))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/v1/tasks", strings.NewReader(
		`{"upstream": "sim", "path": "/v1/chat/completions", "stream": true, "body": `+chatBody("sim-model", "stream me", true)+`}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp.Header.Get("X-Deer-Task-Id") == "" || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Errorf("X-Deer-Task-Id %q; body %q", resp.Header.Get("X-Deer-Task-Id"), body)
	}
}

func TestFullQueueIsRefusedWithRetryAfter(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	cfg.ParallelExecution.MaxWorkers, cfg.ParallelExecution.QueueSize = 1, 1
	h := start(t, cfg)
	hang := `{"upstream": "sim", "path": "/search", "headers": {"X-Sim-Fault": "hang"}, "body": {"query": "%s"}, "async": true}`
	var ids []string
	for i, q := range []string{"running", "queued"} {
		resp, body := h.send(http.MethodPost, "/v1/tasks", strings.Replace(hang, "%s", q, 1))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("task %d: status %d: %s", i, resp.StatusCode, body)
		}
		ids = append(ids, decodeTask(t, body).ID)
		if i == 0 {
			actortest.Eventually(t, "the first task to occupy the worker", func() bool { return s.Stats().InFlight == 1 })
		}
	}
	defer func() {
		for _, id := range ids {
			h.send(http.MethodDelete, "/v1/tasks/"+id, "")
		}
	}()

	retryAfter := func(resp *http.Response) {
		t.Helper()
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After = %q, want whole seconds >= 1", resp.Header.Get("Retry-After"))
		}
	}
	resp, body := h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/search", "body": {"query": "x"}}`)
	wantError(t, resp, body, http.StatusTooManyRequests, "queue_full", "")
	retryAfter(resp)
	resp, body = h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/search", "body": {"query": "x"}, "async": true}`)
	wantError(t, resp, body, http.StatusTooManyRequests, "queue_full", "")
	retryAfter(resp)
	resp, body = h.send(http.MethodPost, "/v1/chat/completions", chatBody("sim-model", "hi", false), sdkHeaders...)
	wantOpenAIError(t, resp, body, http.StatusTooManyRequests, "queue_full", "")
	retryAfter(resp)
	resp, body = h.send(http.MethodGet, "/proxy/sim/search?q=x", "")
	wantError(t, resp, body, http.StatusTooManyRequests, "queue_full", "")
	retryAfter(resp)
}

// FuzzPostTask sends arbitrary bodies to POST /v1/tasks: the answer is never
// a server error, refusals are JSON naming the problem, and the server keeps
// answering.
func FuzzPostTask(f *testing.F) {
	for _, seed := range []string{
		`{"upstream": "sim", "path": "/search", "body": {"query": "x"}}`,
		`{"upstream": "sim", "method": "GET", "path": "/search?q=a", "priority": "low", "cache": "bypass", "timeout": 5}`,
		`{"upstream": "sim", "path": "/search", "body": "{\"query\": \"s\"}", "headers": {"Content-Type": "application/json"}, "async": true}`,
		`{"upstream": "sim", "path": "/v1/chat/completions", "stream": true, "body": {"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}}`,
		`{"upstream": "sim", "path": "/a/%2e%2e/b", "headers": {"X-A": "a\r\nb"}}`,
		`{"upstream": "nope", "path": "/"}`, `{"priority": 1e400}`, `{"timeout": -0}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":`, ``,
	} {
		f.Add(seed)
	}
	_, url := simUpstream(f, sim.DefaultKnobs())
	shared := start(f, simConfig(f, url))
	f.Fuzz(func(t *testing.T, body string) {
		h := *shared
		h.t = t
		h.clk.Advance(time.Second) // the rate limiter's bucket refills on the harness's clock
		resp, answer := h.send(http.MethodPost, "/v1/tasks", body)
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("body %q: status %d: %s", body, resp.StatusCode, answer)
		}
		if resp.StatusCode >= 400 {
			var doc struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(answer, &doc); err != nil || doc.Error.Code == "" || doc.Error.Message == "" {
				t.Fatalf("body %q: status %d without a JSON error: %s", body, resp.StatusCode, answer)
			}
		}
		if resp, _ := h.send(http.MethodGet, "/health/live", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("after body %q the server does not answer", body)
		}
	})
}
