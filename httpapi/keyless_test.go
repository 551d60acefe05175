package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/deer-runtime/deer/internal/sim"
)

// A model routed to an upstream whose api_key_env was unset at start is
// answered 503 upstream_key_missing at once, naming the variable, on every
// route; the simulator behind it sees nothing.
func TestKeylessUpstreamAnswers503NamingTheVariable(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	up := cfg.Upstreams["sim"]
	up.APIKeyEnv = "DEER_HTTPAPI_TEST_UNSET_KEY"
	cfg.Upstreams["sim"] = up
	h := start(t, cfg)

	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/chat/completions", `{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`},
		{http.MethodPost, "/v1/chat/completions", `{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{http.MethodPost, "/v1/embeddings", `{"model":"sim-embed","input":"x"}`},
		{http.MethodPost, "/v1/tasks", `{"upstream":"sim","method":"GET","path":"/v1/models"}`},
		{http.MethodPost, "/v1/tasks", `{"upstream":"sim","method":"GET","path":"/v1/models","async":true}`},
		{http.MethodGet, "/proxy/sim/v1/models", ""},
	} {
		resp, body := h.send(c.method, c.path, c.body, "Content-Type", "application/json")
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
			e.Error.Code != "upstream_key_missing" ||
			e.Error.Message != "upstream sim needs DEER_HTTPAPI_TEST_UNSET_KEY, which is not set" {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	if st := s.Stats(); st.Requests["/v1/chat/completions"]+st.Requests["/v1/embeddings"]+st.Requests["/v1/models"] != 0 {
		t.Errorf("the keyless upstream was called: %+v", st.Requests)
	}
}
