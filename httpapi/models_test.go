package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/catalog"
	"github.com/deer-runtime/deer/internal/sim"
)

// withSim adds upstream name at a new deersim listing models (through its
// own GET /v1/models), with configured as the upstream's `models`.
func withSim(t *testing.T, cfg *conf.Config, name string, knobs sim.Knobs, models []string, configured ...string) *sim.Simulator {
	t.Helper()
	s, url := simUpstream(t, knobs, sim.WithModels(models...))
	up := conf.NewUpstream(url)
	up.Models = configured
	cfg.Upstreams[name] = up
	return s
}

// modelEntry is one entry of GET /v1/models, or the answer of
// GET /v1/models/{id}.
type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models GETs /v1/models and returns its entries as "id@owned_by".
func (h *harness) models() []string {
	h.t.Helper()
	resp, body := h.send(http.MethodGet, "/v1/models", "", sdkHeaders...)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET /v1/models: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Object string       `json:"object"`
		Data   []modelEntry `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil || list.Object != "list" || list.Data == nil {
		h.t.Fatalf("GET /v1/models is not an OpenAI list (%v): %s", err, body)
	}
	out := []string{}
	for _, m := range list.Data {
		if m.Object != "model" || m.Created <= 0 {
			h.t.Errorf("model entry %+v", m)
		}
		out = append(out, m.ID+"@"+m.OwnedBy)
	}
	return out
}

// getModel GETs /v1/models/{id}: the entry, or nil after a 404 in OpenAI's
// model_not_found shape.
func (h *harness) getModel(id string) *modelEntry {
	h.t.Helper()
	resp, body := h.send(http.MethodGet, "/v1/models/"+id, "", sdkHeaders...)
	if resp.StatusCode == http.StatusNotFound {
		wantModelNotFound(h.t, resp, body, id)
		return nil
	}
	var m modelEntry
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil {
		h.t.Fatalf("GET /v1/models/%s: %d %s", id, resp.StatusCode, body)
	}
	return &m
}

// wantModelNotFound checks OpenAI's answer for a missing model, exactly.
func wantModelNotFound(t testing.TB, resp *http.Response, body []byte, model string) {
	t.Helper()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, Content-Type %q, want 404 JSON: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	want := map[string]any{"error": map[string]any{
		"message": "The model `" + model + "` does not exist or you do not have access to it.",
		"type":    "invalid_request_error",
		"param":   "model",
		"code":    "model_not_found",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answer\n%s\nwant %v", body, want)
	}
}

func listCalls(s *sim.Simulator) int64 { return s.Stats().Requests["/v1/models"] }
func chatCalls(s *sim.Simulator) int64 { return s.Stats().Requests["/v1/chat/completions"] }

func TestUnknownModelIsModelNotFound(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	h := start(t, cfg)
	for _, tc := range []struct{ path, body, model string }{
		{"/v1/chat/completions", chatBody("gpt-4.1", "hi", false), "gpt-4.1"},
		{"/v1/chat/completions", chatBody("gpt-4.1", "hi", true), "gpt-4.1"},
		{"/v1/chat/completions", chatBody("sim-modle", "hi", false), "sim-modle"},
		{"/v1/chat/completions", chatBody("meta-llama/Llama-3-70b", "hi", false), "meta-llama/Llama-3-70b"},
		{"/v1/embeddings", `{"model": "text-embedding-3-small", "input": "x"}`, "text-embedding-3-small"},
	} {
		resp, body := h.send(http.MethodPost, tc.path, tc.body, sdkHeaders...)
		wantModelNotFound(t, resp, body, tc.model)
	}
	if h.getModel("gpt-4.1") != nil || h.getModel("sim/gpt-4.1") != nil {
		t.Error("GET /v1/models/{id} found a model nobody serves")
	}
	if n := chatCalls(s) + s.Stats().Requests["/v1/embeddings"]; n != 0 {
		t.Errorf("the simulator was called %d times for models it does not list", n)
	}
	// What it does list still works, by either name.
	for _, model := range []string{"sim-model", "sim/sim-model"} {
		if resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody(model, "hi", false), sdkHeaders...); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", model, resp.StatusCode, body)
		}
	}
}

func TestModelsListsConfiguredAndDiscoveredModels(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	// other serves a configured model, a slashed one it lists itself, and
	// sim-model, which is sim's by configuration.
	withSim(t, cfg, "other", sim.DefaultKnobs(), []string{"other-model", "meta-llama/Llama-3-70b", "sim-model"}, "other-model")
	h := start(t, cfg)

	got := h.models()
	want := []string{"other-model@other", "meta-llama/Llama-3-70b@other", "other/sim-model@other", "sim-model@sim", "sim-embed@sim"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("models = %v, want %v", got, want)
	}
	// Each listed id is found, as listed.
	for _, entry := range want {
		id, owner, _ := strings.Cut(entry, "@")
		if m := h.getModel(id); m == nil || m.ID != id || m.OwnedBy != owner || m.Object != "model" {
			t.Errorf("GET /v1/models/%s = %+v, want owned by %s", id, m, owner)
		}
	}
	if m := h.getModel("meta-llama/Llama-3-70b"); m == nil || m.Created != 1700000000 {
		t.Errorf("a discovered model keeps the upstream's created: %+v", m)
	}
	// The explicit UPSTREAM/ form of a listed model is found too; a model
	// an upstream does not serve is not.
	if m := h.getModel("sim/sim-embed"); m == nil || m.OwnedBy != "sim" {
		t.Errorf("GET /v1/models/sim/sim-embed = %+v", m)
	}
	for _, id := range []string{"gpt-9", "sim/other-model", "other/sim-embed", "meta-llama"} {
		if m := h.getModel(id); m != nil {
			t.Errorf("GET /v1/models/%s = %+v, want 404", id, m)
		}
	}
}

func TestDiscoveredSlashedModelRoutesToItsUpstream(t *testing.T) {
	home, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	llama := withSim(t, cfg, "llama", sim.DefaultKnobs(), []string{"meta-llama/Llama-3-70b", "sim-model"})
	h := start(t, cfg)

	// Nothing is fetched before a request needs it; this one waits for it.
	if n := listCalls(llama); n != 0 {
		t.Fatalf("the model list was fetched %d times before any request", n)
	}
	resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("meta-llama/Llama-3-70b", "hi", false), sdkHeaders...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var c chatCompletion
	if err := json.Unmarshal(body, &c); err != nil || c.Model != "meta-llama/Llama-3-70b" {
		t.Errorf("the upstream was not sent the id whole (%v): %s", err, body)
	}
	if chatCalls(llama) != 1 || chatCalls(home) != 0 {
		t.Errorf("chat calls: llama %d, sim %d; want 1, 0", chatCalls(llama), chatCalls(home))
	}
	// Its prefixed form goes there too; sim-model stays sim's.
	for model, want := range map[string]*sim.Simulator{"llama/meta-llama/Llama-3-70b": llama, "llama/sim-model": llama, "sim-model": home} {
		before := chatCalls(want)
		if resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody(model, "hi", false), sdkHeaders...); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", model, resp.StatusCode, body)
		}
		if chatCalls(want) != before+1 {
			t.Errorf("%s did not reach its upstream", model)
		}
	}
}

func TestModelListsAreCached(t *testing.T) {
	home, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	other := withSim(t, cfg, "other", sim.DefaultKnobs(), []string{"other-model"})
	h := start(t, cfg)
	want := func(n int64, when string) {
		t.Helper()
		if listCalls(home) != n || listCalls(other) != n {
			t.Fatalf("%s: GET /v1/models calls: sim %d, other %d; want %d each", when, listCalls(home), listCalls(other), n)
		}
	}
	unknown := func() {
		t.Helper()
		resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("gpt-9", "hi", false), sdkHeaders...)
		wantModelNotFound(t, resp, body, "gpt-9")
	}

	h.models()
	want(1, "the first list")
	h.models()
	h.getModel("gpt-9")
	unknown()
	h.clk.Advance(catalog.TTL - time.Second)
	unknown()
	h.models()
	want(1, "within the TTL")

	// Out of date: an unknown model waits for the lists to be fetched again.
	h.clk.Advance(time.Second)
	unknown()
	want(2, "an unknown model after the TTL")

	// Out of date again: concurrent lists are answered from the old lists
	// at once, and the lists are fetched once, in the background.
	h.clk.Advance(catalog.TTL)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := sendTo(t, h.srv.URL, http.MethodGet, "/v1/models", "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"other-model"`) {
				t.Errorf("GET /v1/models while refreshing: %d %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	actortest.Eventually(t, "the lists to be fetched again", func() bool { return listCalls(home) == 3 && listCalls(other) == 3 })
	h.models()
	want(3, "after the background refresh")
}

func TestFailedModelListIsRetriedAfterFailureTTL(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	broken := sim.DefaultKnobs()
	broken.ErrorRate = 1
	other := withSim(t, cfg, "other", broken, []string{"other-model"})
	h := start(t, cfg)

	if got := strings.Join(h.models(), " "); got != "sim-model@sim sim-embed@sim" {
		t.Errorf("models while other fails: %s", got)
	}
	if n := listCalls(other); n != 1 {
		t.Fatalf("other was asked %d times, want 1", n)
	}
	// A dead upstream is not asked again on every request.
	for range 3 {
		resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("other-model", "hi", false), sdkHeaders...)
		wantModelNotFound(t, resp, body, "other-model")
		h.models()
	}
	if n := listCalls(other); n != 1 {
		t.Fatalf("within the failure TTL other was asked %d times, want 1", n)
	}
	if err := other.SetKnobs(sim.DefaultKnobs()); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(catalog.FailureTTL)
	resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("other-model", "hi", false), sdkHeaders...)
	if resp.StatusCode != http.StatusOK || listCalls(other) != 2 {
		t.Errorf("after the failure TTL: %d (other asked %d times) %s", resp.StatusCode, listCalls(other), body)
	}
}

func TestUpstreamWithoutKeyIsNotAskedForModels(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	keyed := withSim(t, cfg, "keyed", sim.DefaultKnobs(), []string{"keyed-listed"}, "keyed-model")
	up := cfg.Upstreams["keyed"]
	up.APIKeyEnv = "DEER_TEST_MODELS_KEY"
	cfg.Upstreams["keyed"] = up
	t.Setenv("DEER_TEST_MODELS_KEY", "") // set but empty: no key either
	h := start(t, cfg)

	if got := strings.Join(h.models(), " "); got != "keyed-model@keyed sim-model@sim sim-embed@sim" {
		t.Errorf("models = %s", got)
	}
	resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("keyed-listed", "hi", false), sdkHeaders...)
	wantModelNotFound(t, resp, body, "keyed-listed")
	if n := listCalls(keyed); n != 0 {
		t.Errorf("the upstream without its key was asked for its models %d times", n)
	}
	// The key is read at start: a deerd started with it asks.
	t.Setenv("DEER_TEST_MODELS_KEY", "sk-test")
	cfg.Cache.L3Path = t.TempDir() // the first runtime holds its own
	h = start(t, cfg)
	if got := strings.Join(h.models(), " "); got != "keyed-model@keyed keyed-listed@keyed sim-model@sim sim-embed@sim" || listCalls(keyed) != 1 {
		t.Errorf("with the key: models = %s, asked %d times", got, listCalls(keyed))
	}
}

func TestDefaultUpstreamTakesOnlyWhatNobodyLists(t *testing.T) {
	home, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	cfg.DefaultUpstream = "sim"
	other := withSim(t, cfg, "other", sim.DefaultKnobs(), []string{"other-listed"})
	h := start(t, cfg)

	for model, want := range map[string]*sim.Simulator{"other-listed": other, "gpt-9": home, "sim-model": home} {
		before := chatCalls(want)
		resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody(model, "hi", false), sdkHeaders...)
		var c chatCompletion
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &c) != nil || c.Model != model {
			t.Fatalf("%s: %d %s", model, resp.StatusCode, body)
		}
		if chatCalls(want) != before+1 {
			t.Errorf("%s did not reach its upstream", model)
		}
	}
	// A name only default_upstream takes is routed, not listed.
	if m := h.getModel("gpt-9"); m != nil {
		t.Errorf("GET /v1/models/gpt-9 = %+v, want 404", m)
	}
}

func TestStopEndsAHungModelListFetch(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	hung := sim.DefaultKnobs()
	hung.HangRate = 1
	withSim(t, cfg, "hung", hung, []string{"never-listed"})
	h := start(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var ids []string
	for _, m := range h.rt.Models(ctx) {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, " ") != "sim-model sim-embed" {
		t.Errorf("models while hung does not answer: %v", ids)
	}
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStop()
	began := time.Now()
	if err := h.rt.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("stop waited %v for the hung fetch", took)
	}
}
