package httpapi_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/sim"
)

// The cache, coalescing and batching as an HTTP client sees them, against
// deersim over loopback.

func deersimConfig(t testing.TB) (*conf.Config, *sim.Simulator) {
	s := sim.New(sim.DefaultKnobs())
	up := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); up.Close() })
	cfg := testConfig(t)
	cfg.Monitoring.DetailedLogging = false
	cfg.RateLimit.InitialRate, cfg.RateLimit.MaxRate, cfg.RateLimit.BurstAllowance = 10000, 10000, 10000
	cfg.Upstreams = map[string]conf.Upstream{
		"sim": {BaseURL: up.URL, Cache: "auto", Batch: "openai-embeddings", Timeout: 60, Models: []string{"sim-model", "sim-embed"}},
	}
	return cfg, s
}

func TestRepeatedChatIsAHitOverHTTP(t *testing.T) {
	cfg, s := deersimConfig(t)
	h := start(t, cfg)
	const body = `{"model":"sim-model","temperature":0,"messages":[{"role":"user","content":"hi"}]}`

	resp, first := h.do("POST", "/v1/chat/completions", body)
	if resp.StatusCode != 200 || resp.Header.Get("X-Deer-Cache") != "miss" {
		t.Fatalf("first: %d %q %s", resp.StatusCode, resp.Header.Get("X-Deer-Cache"), first)
	}
	var again []byte
	actortest.Eventually(t, "an L1 hit", func() bool {
		resp, again = h.do("POST", "/v1/chat/completions", body)
		return resp.Header.Get("X-Deer-Cache") == "hit-l1"
	})

	if resp.StatusCode != 200 || string(again) != string(first) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("hit: %d %q %s, want the first answer %s", resp.StatusCode, resp.Header.Get("Content-Type"), again, first)
	}
	if n := s.Stats().Requests["/v1/chat/completions"]; n != 1 {
		t.Errorf("deersim saw %d chat calls, want 1", n)
	}
	resp, _ = h.do("POST", "/v1/chat/completions", body, "X-Deer-Cache", "bypass")
	if resp.Header.Get("X-Deer-Cache") != "bypass" {
		t.Errorf("bypass answered %q", resp.Header.Get("X-Deer-Cache"))
	}
}

// A streamed answer is relayed, stored when complete, and replayed as SSE
// with the same bytes.
func TestStreamIsReplayedOverHTTP(t *testing.T) {
	cfg, s := deersimConfig(t)
	h := start(t, cfg)
	const body = `{"model":"sim-model","temperature":0,"stream":true,"messages":[{"role":"user","content":"tell"}]}`

	resp, first := h.do("POST", "/v1/chat/completions", body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.Contains(string(first), "[DONE]") {
		t.Fatalf("first: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), first)
	}
	var again []byte
	actortest.Eventually(t, "an L1 hit", func() bool {
		resp, again = h.do("POST", "/v1/chat/completions", body)
		return resp.Header.Get("X-Deer-Cache") == "hit-l1"
	})

	if string(again) != string(first) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Errorf("replay: %q\n%s\nwant\n%s", resp.Header.Get("Content-Type"), again, first)
	}
	if n := s.Stats().Requests["/v1/chat/completions"]; n != 1 {
		t.Errorf("deersim saw %d chat calls, want 1", n)
	}
}

// Past batch_processing.max_queue_size an embedding call is answered 429
// with Retry-After, never dropped; the others are batched.
func TestFullBatchQueueIs429OverHTTP(t *testing.T) {
	cfg, s := deersimConfig(t)
	cfg.BatchProcessing.BatchSize = 10
	cfg.BatchProcessing.BatchTimeout = 2.5
	cfg.BatchProcessing.AdaptiveSizing = false
	cfg.BatchProcessing.MaxQueueSize = 3
	h := start(t, cfg)

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := ""
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := h.do("POST", "/v1/embeddings", fmt.Sprintf(`{"model":"sim-embed","input":"text %d"}`, i))
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == 429 {
				retryAfter = resp.Header.Get("Retry-After")
			}
		}()
	}
	// The batch flushes at batch_timeout on the runtime's (fake) clock.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for flushed := false; !flushed; {
		select {
		case <-done:
			flushed = true
		case <-time.After(10 * time.Millisecond):
			h.clk.Advance(100 * time.Millisecond)
		}
	}
	// Retry-After: the batch queue drains within a batch_timeout (2.5 s → 3;
	// the task queue's own estimate would say 1).
	if statuses[200] != 3 || statuses[429] != 1 || retryAfter != "3" {
		t.Errorf("statuses %v, Retry-After %q; want three 200, one 429 with Retry-After: 3", statuses, retryAfter)
	}
	if st := s.Stats(); st.EmbeddingCalls != 1 || st.EmbeddingInputs != 3 {
		t.Errorf("deersim saw %d embedding calls with %d inputs, want 1 with 3", st.EmbeddingCalls, st.EmbeddingInputs)
	}
}
