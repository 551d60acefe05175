package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/actortest"
)

// refusedWith checks a SPEC §4 error answer (status, code, field) and goes on.
func refusedWith(t *testing.T, what string, resp *http.Response, body []byte, status int, code, field string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d: %s", what, resp.StatusCode, status, body)
		return
	}
	doc := decode(t, body)
	e, _ := doc["error"].(map[string]any)
	if e["code"] != code || e["field"] != field && !(field == "" && e["field"] == nil) {
		t.Errorf("%s: error %v, want code %s, field %q", what, e, code, field)
	}
}

// Without debug_mode or server.fault_injection the routes do not exist;
// POST /config turns them on and off live.
func TestFaultsExistOnlyWhileEnabled(t *testing.T) {
	h := start(t, testConfig(t))
	refused := func(when string) {
		t.Helper()
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/faults", ""},
			{http.MethodPost, "/faults", `{"actor":"cache/l1","kind":"panic"}`},
			{http.MethodDelete, "/faults", ""},
			{http.MethodDelete, "/faults/f1", ""},
			{http.MethodPut, "/faults", ""}, // not even a 405: there is nothing here
		} {
			resp, body := h.do(r.method, r.path, r.body)
			refusedWith(t, when+": "+r.method+" "+r.path, resp, body, http.StatusNotFound, "not_found", "server.fault_injection")
		}
	}
	refused("by default")
	if len(h.rt.Faults().Faults) != 0 {
		t.Fatal("a refused POST /faults injected a fault")
	}

	for _, on := range []string{`{"server": {"fault_injection": true}}`, `{"debug_mode": true}`} {
		if resp, body := h.do(http.MethodPost, "/config", on); resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /config %s: %d %s", on, resp.StatusCode, body)
		}
		doc := h.getJSON("/faults", http.StatusOK)
		if f, ok := doc["faults"].([]any); !ok || len(f) != 0 || doc["escalations"] != 0.0 {
			t.Errorf("GET /faults with %s: %v", on, doc)
		}
		if resp, body := h.do(http.MethodPut, "/faults", ""); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("PUT /faults while enabled: %d %s", resp.StatusCode, body)
		}
		if resp, body := h.do(http.MethodPost, "/config/reset", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("reset: %d %s", resp.StatusCode, body)
		}
		refused("after reset")
	}
}

func TestFaultsNeedTheAdminToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.AdminToken = "s3cret"
	cfg.Server.FaultInjection = true
	h := start(t, cfg)
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/faults"}, {http.MethodPost, "/faults"}, {http.MethodDelete, "/faults"}, {http.MethodDelete, "/faults/f1"},
	} {
		resp, body := h.do(r.method, r.path, `{"actor":"cache/l1","kind":"drop"}`)
		refusedWith(t, r.method+" "+r.path+" without a token", resp, body, http.StatusUnauthorized, "unauthorized", "")
		resp, body = h.do(r.method, r.path, `{"actor":"cache/l1","kind":"drop"}`, "Authorization", "Bearer wrong")
		refusedWith(t, r.method+" "+r.path+" with a wrong token", resp, body, http.StatusForbidden, "forbidden", "")
	}
	if len(h.rt.Faults().Faults) != 0 {
		t.Fatal("an unauthorised POST /faults injected a fault")
	}
	resp, body := h.do(http.MethodPost, "/faults", `{"actor":"cache/l1","kind":"drop","message":"Ping"}`, "Authorization", "Bearer s3cret")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("with the token: %d %s", resp.StatusCode, body)
	}
}

func TestFaultsClosedOnNonLoopbackWithoutToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.Addr = "0.0.0.0:8000" // what deerd would listen on; the test server still uses loopback
	cfg.Server.FaultInjection = true
	h := start(t, cfg)
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		resp, body := h.do(method, "/faults", `{"actor":"cache/l1","kind":"drop"}`)
		refusedWith(t, method+" /faults", resp, body, http.StatusForbidden, "admin_token_required", "server.admin_token")
	}
}

func TestBadFaultsAreRefusedNamingTheField(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.FaultInjection = true
	h := start(t, cfg)
	for _, tc := range []struct {
		body, code, field string
	}{
		{`{"kind":"panic"}`, "invalid_field", "actor"},
		{`{"actor":"cache/l9","kind":"panic"}`, "invalid_field", "actor"},
		{`{"actor":"cache/*/x","kind":"panic"}`, "invalid_field", "actor"},
		{`{"actor":"cache/l1","kind":"explode"}`, "invalid_field", "kind"},
		{`{"actor":"cache/l1","kind":"drop","count":-1}`, "invalid_field", "count"},
		{`{"actor":"cache/l1","kind":"delay"}`, "invalid_field", "delay_ms"},
		{`{"actor":"cache/l1","kind":"delay","delay_ms":60001}`, "invalid_field", "delay_ms"},
		{`{"actor":"cache/l1","kind":"delay","delay_ms":9223372036854775807}`, "invalid_field", "delay_ms"},
		{`{"actor":"cache/l1","kind":"panic","delay_ms":5}`, "invalid_field", "delay_ms"},
		{`{"actor":"cache/l1","kind":"panic","message":"*messages.CachePut"}`, "invalid_field", "message"},
		{`{"actor":"cache/l1","kind":"panic","actors":"x"}`, "unknown_field", "actors"},
		{`{"actor":"cache/l1","kind":"panic","count":"1"}`, "invalid_type", "count"},
		{`{"actor":"cache/l1","kind":"delay","delay_ms":1.5}`, "invalid_type", "delay_ms"},
		{`{"actor":"cache/l1"`, "invalid_json", ""},
		{`{"actor":"cache/l1","kind":"panic"} {}`, "invalid_json", ""},
		{``, "invalid_json", ""},
	} {
		resp, body := h.do(http.MethodPost, "/faults", tc.body)
		refusedWith(t, tc.body, resp, body, http.StatusBadRequest, tc.code, tc.field)
	}
	if n := len(h.rt.Faults().Faults); n != 0 {
		t.Errorf("refused faults left %d behind", n)
	}
}

// A panic injected over HTTP acts in the real cache/l2: the chat that met
// it is answered after the restart, and GET /faults shows the fault fired
// and the restart. Then the faults are removed.
func TestFaultsOverHTTP(t *testing.T) {
	cfg, _ := deersimConfig(t)
	cfg.Server.FaultInjection = true
	h := start(t, cfg)
	resp, body := h.do(http.MethodPost, "/faults", `{"actor":"cache/l2","kind":"panic","count":1,"message":"CacheLookup"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /faults: %d %s", resp.StatusCode, body)
	}
	doc := decode(t, body)
	want := map[string]any{"id": "f1", "actor": "cache/l2", "kind": "panic", "count": 1.0, "delay_ms": 0.0,
		"message": "CacheLookup", "fired": 0.0, "active": true}
	if doc["id"] != "f1" || !equalJSON(doc["fault"], want) {
		t.Errorf("POST /faults answered %v, want id f1 and fault %v", doc, want)
	}

	type answer struct {
		status int
		body   string
	}
	done := make(chan answer, 1)
	go func() {
		const chat = `{"model":"sim-model","temperature":0,"messages":[{"role":"user","content":"fault"}]}`
		resp, err := http.Post(h.srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(chat))
		if err != nil {
			done <- answer{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, string(b)}
	}()
	// cache/l2 crashed; its restart waits on the fake clock.
	actortest.Eventually(t,

		"GET /faults to show the restart", func() bool {
			r, _ := h.getJSON("/faults", http.StatusOK)["restarts"].(map[string]any)
			return r["cache/l2"] == 1.0
		})

	h.clk.Advance(time.Minute) // past the default policy's longest backoff
	if a := <-done; a.status != http.StatusOK {
		t.Fatalf("the chat that met the fault: %d %s", a.status, a.body)
	}
	doc = h.getJSON("/faults", http.StatusOK)
	f := doc["faults"].([]any)
	want["fired"], want["active"] = 1.0, false
	if len(f) != 1 || !equalJSON(f[0], want) || doc["escalations"] != 0.0 {
		t.Errorf("GET /faults after the chat: %v, want the one fault %v", doc, want)
	}

	if resp, body := h.do(http.MethodDelete, "/faults/f1", ""); resp.StatusCode != http.StatusOK || decode(t, body)["removed"] != true {
		t.Errorf("DELETE /faults/f1: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do(http.MethodDelete, "/faults/f1", "")
	refusedWith(t, "DELETE /faults/f1 again", resp, body, http.StatusNotFound, "unknown_fault", "id")
	for _, b := range []string{`{"actor":"worker/*","kind":"delay","delay_ms":1,"message":"Ping"}`, `{"actor":"*","kind":"drop","message":"Ping"}`} {
		if resp, body := h.do(http.MethodPost, "/faults", b); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /faults %s: %d %s", b, resp.StatusCode, body)
		}
	}
	if resp, body := h.do(http.MethodDelete, "/faults", ""); resp.StatusCode != http.StatusOK || decode(t, body)["removed"] != 2.0 {
		t.Errorf("DELETE /faults: %d %s, want 2 removed", resp.StatusCode, body)
	}
	if f := h.getJSON("/faults", http.StatusOK)["faults"].([]any); len(f) != 0 {
		t.Errorf("faults left after DELETE /faults: %v", f)
	}
}

func equalJSON(got any, want map[string]any) bool {
	m, ok := got.(map[string]any)
	if !ok || len(m) != len(want) {
		return false
	}
	for k, v := range want {
		if m[k] != v {
			return false
		}
	}
	return true
}

// FuzzPostFaults sends arbitrary bodies to POST /faults: the answer is
// always 202 or 400 with a JSON body, and a refused body injects nothing.
func FuzzPostFaults(f *testing.F) {
	for _, seed := range []string{
		`{"actor":"cache/l1","kind":"panic","count":1}`,
		`{"actor":"worker/*","kind":"delay","delay_ms":100,"message":"Run"}`,
		`{"actor":"*","kind":"drop","count":0,"message":"Ping"}`,
		`{"actor":"cache/l1","kind":"delay","delay_ms":-1}`,
		`{"actor":"","kind":""}`, `{"count":1e99}`, `{"actor":null}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":`, ``,
	} {
		f.Add(seed)
	}
	cfg := testConfig(f)
	cfg.Server.FaultInjection = true
	shared := start(f, cfg)
	f.Fuzz(func(t *testing.T, body string) {
		h := *shared
		h.t = t // *F methods may not be called inside the fuzz function
		resp, answer := h.do(http.MethodPost, "/faults", body)
		decode(t, answer)
		switch resp.StatusCode {
		case http.StatusAccepted:
			// Nothing runs meanwhile (the harness's clock is fake and no
			// task is sent): remove it before it meets a message.
			if r, b := h.do(http.MethodDelete, "/faults", ""); r.StatusCode != http.StatusOK || decode(t, b)["removed"] != 1.0 {
				t.Fatalf("DELETE /faults = %d: %s", r.StatusCode, b)
			}
		case http.StatusBadRequest:
			if n := len(h.rt.Faults().Faults); n != 0 {
				t.Fatalf("refused body %q left %d faults", body, n)
			}
		default:
			t.Fatalf("body %q: status %d: %s", body, resp.StatusCode, answer)
		}
	})
}
