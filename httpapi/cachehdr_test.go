package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/sim"
)

// TestCacheHeadersAreValidatedOnEveryRoute: a bad X-Deer-Cache-TTL or
// X-Deer-Cache-Namespace is refused with 400 naming the header, before any
// task runs, on the OpenAI routes, /v1/tasks and /proxy alike.
func TestCacheHeadersAreValidatedOnEveryRoute(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	routes := []struct{ name, method, path, body string }{
		{"chat", http.MethodPost, "/v1/chat/completions", chatBody("sim-model", "hi", false)},
		{"tasks", http.MethodPost, "/v1/tasks", `{"upstream": "sim", "method": "GET", "path": "/search?q=x"}`},
		{"proxy", http.MethodGet, "/proxy/sim/search?q=x", ""},
	}
	for _, bad := range [][]string{
		{"X-Deer-Cache-TTL", "0"},
		{"X-Deer-Cache-TTL", "soon"},
		{"X-Deer-Cache-Namespace", strings.Repeat("n", 201)},
		{"X-Deer-Cache-Namespace", "has space"},
		{"X-Deer-Cache", "never"},
	} {
		for _, r := range routes {
			t.Run(r.name+" "+bad[0]+"="+bad[1][:min(len(bad[1]), 10)], func(t *testing.T) {
				resp, body := h.send(r.method, r.path, r.body, bad...)
				if r.name == "chat" {
					wantOpenAIError(t, resp, body, http.StatusBadRequest, "invalid_header", bad[0])
				} else {
					wantError(t, resp, body, http.StatusBadRequest, "invalid_header", bad[0])
				}
				if !strings.Contains(string(body), bad[0]) {
					t.Errorf("the message does not name %s: %s", bad[0], body)
				}
			})
		}
	}
}

// TestCacheHeadersAreAcceptedAndNotForwarded: valid steering headers and
// the no-store mode are accepted on every route, and neither they nor the
// client's credential (which only becomes the task's tenant hash) reach
// the upstream.
func TestCacheHeadersAreAcceptedAndNotForwarded(t *testing.T) {
	echo := newEchoUpstream(t)
	cfg := simConfig(t, echo.url)
	up := conf.NewUpstream(echo.url)
	up.Models = []string{"echo-model"}
	cfg.Upstreams = map[string]conf.Upstream{"echo": up}
	cfg.DefaultUpstream = "echo"
	h := start(t, cfg)
	steer := []string{
		"X-Deer-Cache", "no-store", "X-Deer-Cache-TTL", "30", "X-Deer-Cache-Namespace", "team-a",
		"Authorization", "Bearer sk-client-secret", "Content-Type", "application/json",
	}
	for _, tc := range []struct{ name, method, path, body, seen string }{
		{"proxy", http.MethodPost, "/proxy/echo/search", `{"q": "x"}`, "/search"},
		{"tasks", http.MethodPost, "/v1/tasks", `{"upstream": "echo", "path": "/t", "body": {"q": 1}, "cache": "no-store"}`, "/t"},
		{"chat", http.MethodPost, "/v1/chat/completions", chatBody("echo-model", "hi", false), "/v1/chat/completions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.send(tc.method, tc.path, tc.body, steer...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := echo.last(t, tc.seen)
			for name := range got.header {
				if strings.HasPrefix(name, "X-Deer-") {
					t.Errorf("the upstream saw %s: %q", name, got.header.Get(name))
				}
			}
			if a := got.header.Get("Authorization"); a != "" {
				t.Errorf("the upstream saw Authorization %q; the client's credential must stay in deer", a)
			}
		})
	}
}
