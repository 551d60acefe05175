package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// Two deerd processes on the shipped conf/deer.toml, side by side as two
// `make run ADDR=…` would be, sharing cache.l3_path and without
// OPENAI_API_KEY: both start and serve chats from their own built-in
// simulator on an ephemeral port; the second serves without L3 and says
// why; openai is refused at once with 503 naming the variable.
func TestTwoDeerdOnTheShippedConfig(t *testing.T) {
	t.Parallel()
	shipped, err := filepath.Abs(filepath.Join(repoRoot, "conf", "deer.toml"))
	if err != nil {
		t.Fatal(err)
	}
	l3 := "DEER_L3_PATH=" + t.TempDir()
	first := startDeerd(t, append(cleanEnv(t), l3), "--config", shipped)
	second := startDeerd(t, append(cleanEnv(t), l3), "--config", shipped)

	simURL := func(s *server) string {
		raw, _ := at(t, s.getJSON("/config", http.StatusOK), "configuration.upstreams.sim.base_url").(string)
		u, err := url.Parse(raw)
		if err != nil || u.Port() == "" || u.Port() == "0" {
			t.Fatalf("GET /config shows the simulator at %q, want its bound port", raw)
		}
		if !strings.Contains(s.stderr.String(), `"addr":"`+u.Host+`"`) {
			t.Errorf("the log does not say the simulator listens on %s:\n%s", u.Host, s.stderr)
		}
		return raw
	}
	if a, b := simURL(first), simURL(second); a == b {
		t.Errorf("both simulators on %s", a)
	}

	for i, s := range []*server{first, second} {
		resp, body := s.do(http.MethodPost, "/v1/chat/completions",
			`{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`, "Content-Type", "application/json")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "chat.completion") {
			t.Errorf("deerd %d: chat = %d %s", i+1, resp.StatusCode, body)
		}
		resp, body = s.do(http.MethodPost, "/v1/chat/completions",
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, "Content-Type", "application/json")
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"upstream_key_missing"`) ||
			!strings.Contains(string(body), "OPENAI_API_KEY") {
			t.Errorf("deerd %d: openai without its key = %d %s", i+1, resp.StatusCode, body)
		}
		if n := strings.Count(s.stderr.String(), `"api_key_env":"OPENAI_API_KEY"`); n != 1 {
			t.Errorf("deerd %d: %d log lines about OPENAI_API_KEY, want one warning:\n%s", i+1, n, s.stderr)
		}
	}

	// The first holds L3; a keyless openai does not make it less than healthy.
	if st := at(t, first.getJSON("/health", http.StatusOK), "status"); st != "healthy" {
		t.Errorf("first deerd: status %v, want healthy", st)
	}
	h := second.getJSON("/health", http.StatusOK)
	if st, l3 := at(t, h, "status"), at(t, h, "actors.cache/l3.state"); st != "degraded" || l3 != "degraded" {
		t.Errorf("second deerd: status %v, cache/l3 %v; want degraded, degraded", st, l3)
	}
	if d, _ := at(t, h, "actors.cache/l3.detail").(string); !strings.Contains(d, "DEER_L3_PATH") {
		t.Errorf("cache/l3 detail %q does not say how to fix it", d)
	}
	if p := at(t, h, "actors.pool/openai.state"); p != "disabled" {
		t.Errorf("pool/openai is %v in /health, want disabled", p)
	}
	if !strings.Contains(second.stderr.String(), "cache.l3_path") {
		t.Errorf("the second deerd does not name cache.l3_path:\n%s", second.stderr)
	}
	checkLogLines(t, second.stderr.String())
	for _, s := range []*server{second, first} {
		if res := s.stop(); res.code != 0 {
			t.Errorf("exit code %d:\n%s", res.code, res.stderr)
		}
	}
}
