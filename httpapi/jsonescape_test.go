package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// Every JSON answer deerd writes keeps <, > and & as they are: no
// "\u003credacted\u003e" in /config, no "\u003e" in error messages, and an
// upstream's JSON body relayed in a task result byte for byte.
func TestJSONAnswersAreNotHTMLEscaped(t *testing.T) {
	echo := newEchoUpstream(t)
	cfg := simConfig(t, echo.url)
	cfg.Server.AdminToken = "s3cret-admin-token"
	up := cfg.Upstreams["sim"]
	up.Models = append(up.Models, "m<&>") // through conf.Upstream's own MarshalJSON
	cfg.Upstreams["sim"] = up
	h := start(t, cfg)

	check := func(what string, body []byte, literal ...string) {
		t.Helper()
		for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
			if strings.Contains(string(body), esc) {
				t.Errorf("%s: HTML-escaped %s in %s", what, esc, body)
			}
		}
		for _, l := range literal {
			if !strings.Contains(string(body), l) {
				t.Errorf("%s: %q not found literally in %s", what, l, body)
			}
		}
	}
	_, body := h.send(http.MethodGet, "/config", "")
	check("GET /config", body, `"admin_token": "<redacted>"`, `"m<&>"`)
	_, body = h.send(http.MethodGet, "/v1/models", "")
	check("GET /v1/models", body, `"m<&>"`)
	resp, body := h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/x", "timeout": -1}`)
	wantError(t, resp, body, http.StatusBadRequest, "invalid_field", "timeout")
	check("an error", body, "timeout must be > 0 and <= ")
	resp, body = h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/echo", "body": {"html": "<b>a & b</b>"}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("task: %d %s", resp.StatusCode, body)
	}
	check("a task result", body, `"html": "<b>a & b</b>"`)
	for _, path := range []string{"/health", "/metrics", "/config/reset"} {
		method := http.MethodGet
		if path == "/config/reset" {
			method = http.MethodPost // 401 without the token: an error answer
		}
		_, body := h.send(method, path, "")
		check(method+" "+path, body)
	}
}
