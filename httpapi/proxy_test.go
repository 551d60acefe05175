package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/sim"
)

func TestProxyRequestsAreValidated(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	cfg.Server.MaxBodyBytes = 4096
	h := start(t, cfg)
	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		code, field              string
	}{
		{"unknown upstream", http.MethodPost, "/proxy/nope/search", `{"query": "x"}`, nil, 404, "unknown_upstream", "upstream"},
		{"unknown upstream, no path", http.MethodGet, "/proxy/nope", "", nil, 404, "unknown_upstream", "upstream"},
		{"method not proxied", "TRACE", "/proxy/sim/search", "", nil, 405, "method_not_allowed", ""},
		{"body over max_body_bytes", http.MethodPost, "/proxy/sim/search", strings.Repeat("x", 5000), nil, 413, "body_too_large", ""},
		{"bad X-Deer-Cache", http.MethodPost, "/proxy/sim/search", `{"query": "x"}`, []string{"X-Deer-Cache", "sometimes"}, 400, "invalid_header", "X-Deer-Cache"},
		{"bad X-Deer-Priority", http.MethodGet, "/proxy/sim/search?q=x", "", []string{"X-Deer-Priority", "highest"}, 400, "invalid_header", "X-Deer-Priority"},
		{"raw URL as the path", http.MethodGet, "/proxy/sim/http:%2F%2Fevil.example/x", "", nil, 400, "invalid_field", "path"},
		// deer says what is missing rather than relay the upstream's 404 for
		// its root.
		{"no path", http.MethodGet, "/proxy/sim", "", nil, 400, "missing_path", "path"},
		{"no path, trailing slash", http.MethodPost, "/proxy/sim/", `{"query": "x"}`, nil, 400, "missing_path", "path"},
		{"no path, a query", http.MethodGet, "/proxy/sim/?q=x", "", nil, 400, "missing_path", "path"},
		{"no upstream", http.MethodGet, "/proxy/", "", nil, 400, "missing_upstream", "upstream"},
		{"no upstream, no slash", http.MethodGet, "/proxy", "", nil, 400, "missing_upstream", "upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := sendTo(t, h.srv.URL, tc.method, tc.path, tc.body, tc.header...)
			wantError(t, resp, body, tc.status, tc.code, tc.field)
		})
	}
	if _, body := sendTo(t, h.srv.URL, http.MethodGet, "/proxy/sim/", ""); !strings.Contains(string(body), "/proxy/{upstream}/{path}: path is missing") {
		t.Errorf("the missing path is not named: %s", body)
	}
	h.getJSON("/health", http.StatusOK)
}

// --- end to end: these need the router to execute tasks ---

func TestProxyToSearch(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	resp, body := h.send(http.MethodPost, "/proxy/sim/search", `{"query": "deer flow", "max_results": 3}`,
		"Content-Type", "application/json", "X-Deer-Priority", "high", "X-Deer-Cache", "bypass")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var sr searchResults
	if err := json.Unmarshal(body, &sr); err != nil || sr.Query != "deer flow" || len(sr.Results) != 3 {
		t.Errorf("unexpected answer (%v): %s", err, body)
	}
	if resp.Header.Get("X-Deer-Task-Id") == "" || resp.Header.Get("X-Deer-Cache") != "bypass" || resp.Header.Get("X-Deer-Attempts") != "1" {
		t.Errorf("X-Deer-* headers: %v", resp.Header)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
	}
	resp, body = h.send(http.MethodGet, "/proxy/sim/search?q=deer&max_results=2", "")
	if err := json.Unmarshal(body, &sr); resp.StatusCode != http.StatusOK || err != nil || len(sr.Results) != 2 {
		t.Errorf("GET: %d %s", resp.StatusCode, body)
	}
}

func TestProxyPassesEndToEndHeadersOnly(t *testing.T) {
	echo := newEchoUpstream(t)
	t.Setenv("DEER_TEST_ECHO_KEY", "sk-upstream-key")
	cfg := simConfig(t, echo.url)
	up := conf.NewUpstream(echo.url)
	up.APIKeyEnv = "DEER_TEST_ECHO_KEY"
	cfg.Upstreams = map[string]conf.Upstream{"echo": up}
	cfg.DefaultUpstream = "echo"
	h := start(t, cfg)

	resp, body := h.send(http.MethodPut, "/proxy/echo/a/b%2Fc?x=1&y=%20z", "plain text body",
		"Content-Type", "text/plain", "X-Custom", "kept", "Authorization", "Bearer client-key",
		"X-Deer-Priority", "low", "Connection", "X-Hop-Req", "X-Hop-Req", "dropped", "Idempotency-Key", "put-1")
	if resp.StatusCode != http.StatusOK || string(body) != "plain text body" {
		t.Fatalf("status %d: %q", resp.StatusCode, body)
	}
	got := echo.last(t, "/a/b/c")
	if got.method != http.MethodPut || got.query != "x=1&y=%20z" || got.body != "plain text body" {
		t.Errorf("the upstream got %s %s?%s %q", got.method, got.path, got.query, got.body)
	}
	for name, want := range map[string]string{
		"X-Custom": "kept", "Content-Type": "text/plain", "Authorization": "Bearer sk-upstream-key",
		"X-Deer-Priority": "", "X-Hop-Req": "", "Idempotency-Key": "put-1",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("upstream saw %s = %q, want %q", name, v, want)
		}
	}
	if resp.Header.Get("X-Echo") != "yes" || resp.Header.Get("X-Hop") != "" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("answer headers %v", resp.Header)
	}
}

func TestProxyRelaysUpstreamAnswersAndMapsFailures(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	// An upstream 4xx is the upstream's answer, relayed as it is.
	resp, body := h.send(http.MethodPost, "/proxy/sim/search", `{"query": ""}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "missing_required_parameter") {
		t.Errorf("upstream 400: %d %s", resp.StatusCode, body)
	}
	resp, body = h.send(http.MethodGet, "/proxy/sim/no/such/path", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "unknown_url") {
		t.Errorf("upstream 404: %d %s", resp.StatusCode, body)
	}
	// An upstream 5xx (no retries configured) fails the task: 502 in deer's shape.
	resp, body = h.send(http.MethodPost, "/proxy/sim/search", `{"query": "x"}`, "X-Sim-Status", "503")
	wantError(t, resp, body, http.StatusBadGateway, "upstream_error", "")
	if resp.Header.Get("X-Deer-Task-Id") == "" {
		t.Errorf("a failed task's answer lacks X-Deer-Task-Id")
	}
}
