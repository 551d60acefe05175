package httpapi_test

import (
	"net/http"
	"testing"
)

// FuzzPostConfig sends arbitrary bodies to POST /config: the answer is
// always 200, 400 or 413 with a JSON body, and a refused body changes nothing.
func FuzzPostConfig(f *testing.F) {
	for _, seed := range []string{
		`{"batch_processing": {"batch_size": 15, "batch_timeout": 2.0}}`,
		`{"rate_limit": {"initial_rate": 20.0, "max_rate": 200.0}}`,
		`{"parallel_execution": {"max_workers": "5"}}`,
		`{"cache": {"eviction_policy": "lfu", "l1_size": 3}}`,
		`{"upstreams": {"x": {"base_url": "http://127.0.0.1:1"}}}`,
		`{"monitoring": null}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":`, ``,
	} {
		f.Add(seed)
	}
	shared := start(f, testConfig(f))
	f.Fuzz(func(t *testing.T, body string) {
		h := *shared
		h.t = t // *F methods may not be called inside the fuzz function
		_, before := h.do(http.MethodGet, "/config", "")
		resp, answer := h.do(http.MethodPost, "/config", body)
		switch resp.StatusCode {
		case http.StatusOK:
			// Return to the startup configuration so inputs do not pile up.
			if r, b := h.do(http.MethodPost, "/config/reset", ""); r.StatusCode != http.StatusOK {
				t.Fatalf("reset = %d: %s", r.StatusCode, b)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			decode(t, answer)
			_, after := h.do(http.MethodGet, "/config", "")
			if stripTimestamp(t, before) != stripTimestamp(t, after) {
				t.Fatalf("refused body %q changed the configuration", body)
			}
		default:
			t.Fatalf("body %q: status %d: %s", body, resp.StatusCode, answer)
		}
	})
}
