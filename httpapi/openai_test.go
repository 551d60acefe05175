package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/sim"
)

func chatBody(model, prompt string, stream bool) string {
	b, _ := json.Marshal(map[string]any{
		"model":    model,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
		"stream":   stream,
	})
	return string(b)
}

// sdkHeaders are what the OpenAI SDKs (and LangChain's ChatOpenAI) send
// besides the body: a key deer must ignore, and their own headers.
var sdkHeaders = []string{
	"Authorization", "Bearer sk-client-key-deer-ignores",
	"Content-Type", "application/json",
	"User-Agent", "OpenAI/Python 1.55.0",
	"X-Stainless-Lang", "python",
}

// wantOpenAIError checks an answer in OpenAI's error shape.
func wantOpenAIError(t testing.TB, resp *http.Response, body []byte, status int, code, param string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var doc struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Error == nil {
		t.Fatalf("not an OpenAI error (%v): %s", err, body)
	}
	if doc.Error.Code != code || doc.Error.Message == "" || doc.Error.Type == "" {
		t.Errorf("error = %+v, want code %q", *doc.Error, code)
	}
	got := ""
	if doc.Error.Param != nil {
		got = *doc.Error.Param
	}
	if got != param {
		t.Errorf("param = %q, want %q (%s)", got, param, body)
	}
	if !strings.Contains(string(body), `"param"`) {
		t.Errorf("param must be present (null when none): %s", body)
	}
}

func TestOpenAIRequestsAreValidated(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	cfg.Server.MaxBodyBytes = 4096
	h := start(t, cfg)
	cases := []struct {
		name, path, body string
		header           []string
		status           int
		code, param      string
	}{
		{"malformed JSON", "/v1/chat/completions", `{"model": "sim-model",`, nil, 400, "invalid_json", ""},
		{"not an object", "/v1/chat/completions", `["sim-model"]`, nil, 400, "invalid_json", ""},
		{"empty body", "/v1/chat/completions", ``, nil, 400, "invalid_json", ""},
		{"two values", "/v1/chat/completions", `{"model": "sim-model"} {}`, nil, 400, "invalid_json", ""},
		{"model missing", "/v1/chat/completions", `{"messages": []}`, nil, 400, "missing_required_parameter", "model"},
		{"model empty", "/v1/chat/completions", `{"model": ""}`, nil, 400, "missing_required_parameter", "model"},
		{"model not a string", "/v1/chat/completions", `{"model": 4}`, nil, 400, "invalid_type", "model"},
		{"stream not a boolean", "/v1/chat/completions", `{"model": "sim-model", "stream": "yes"}`, nil, 400, "invalid_type", "stream"},
		{"unknown model", "/v1/chat/completions", chatBody("gpt-9", "hi", false), nil, 404, "model_not_found", "model"},
		{"unknown upstream prefix", "/v1/chat/completions", chatBody("nope/sim-model", "hi", false), nil, 404, "model_not_found", "model"},
		{"unknown embedding model", "/v1/embeddings", `{"model": "embed-9", "input": "x"}`, nil, 404, "model_not_found", "model"},
		{"body over max_body_bytes", "/v1/chat/completions", chatBody("sim-model", strings.Repeat("x", 5000), false), nil, 413, "body_too_large", ""},
		{"bad X-Deer-Priority", "/v1/chat/completions", chatBody("sim-model", "hi", false), []string{"X-Deer-Priority", "-1"}, 400, "invalid_header", "X-Deer-Priority"},
		{"bad X-Deer-Cache", "/v1/embeddings", `{"model": "sim-embed", "input": "x"}`, []string{"X-Deer-Cache", "yes"}, 400, "invalid_header", "X-Deer-Cache"},
		{"bad Idempotency-Key", "/v1/chat/completions", chatBody("sim-model", "hi", false), []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400, "invalid_header", "Idempotency-Key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := sendTo(t, h.srv.URL, http.MethodPost, tc.path, tc.body, append(append([]string{}, sdkHeaders...), tc.header...)...)
			wantOpenAIError(t, resp, body, tc.status, tc.code, tc.param)
		})
	}
	h.getJSON("/health", http.StatusOK)
	resp, body := h.send(http.MethodGet, "/v1/chat/completions", "")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "method_not_allowed", "")
}

// --- end to end: these need the router to execute tasks ---

// chatCompletion is the part of a chat.completion the tests read.
type chatCompletion struct {
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct{ Role, Content string } `json:"message"`
	} `json:"choices"`
}

func TestChatCompletion(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	for _, model := range []string{"sim-model", "sim/sim-model"} {
		resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody(model, "hello deer", false), sdkHeaders...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", model, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q", ct)
		}
		var c chatCompletion
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		// The simulator echoes the model it was sent: the prefix is gone.
		if c.Object != "chat.completion" || c.Model != "sim-model" || len(c.Choices) != 1 || c.Choices[0].Message.Content != "sim reply to: hello deer" {
			t.Errorf("%s: unexpected completion: %s", model, body)
		}
		if !strings.HasPrefix(resp.Header.Get("X-Deer-Task-Id"), "task_") || resp.Header.Get("X-Deer-Attempts") != "1" || resp.Header.Get("X-Deer-Cache") == "" {
			t.Errorf("X-Deer-* headers: %v", resp.Header)
		}
	}
}

func TestModelPrefixIsStrippedAndNothingElseChanges(t *testing.T) {
	echo := newEchoUpstream(t)
	t.Setenv("DEER_TEST_ECHO_KEY", "sk-upstream-key")
	cfg := simConfig(t, echo.url)
	up := conf.NewUpstream(echo.url)
	up.APIKeyEnv = "DEER_TEST_ECHO_KEY"
	up.Models = []string{"m1"}
	cfg.Upstreams = map[string]conf.Upstream{"echo": up}
	cfg.DefaultUpstream = "echo"
	h := start(t, cfg)

	sent := "{ \"temperature\" :0.50,\n  \"model\":\"echo/m1\" , \"messages\":[{\"role\":\"user\",\"content\":\"x\\u00e9\"}],\"extra\":{\"b\":1,\"a\":[1.0e2]} }"
	want := "{ \"temperature\" :0.50,\n  \"model\":\"m1\" , \"messages\":[{\"role\":\"user\",\"content\":\"x\\u00e9\"}],\"extra\":{\"b\":1,\"a\":[1.0e2]} }"
	resp, body := h.send(http.MethodPost, "/v1/chat/completions", sent, sdkHeaders...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := echo.last(t, "/v1/chat/completions")
	if got.body != want {
		t.Errorf("the upstream got\n%q\nwant\n%q", got.body, want)
	}
	if string(body) != want {
		t.Errorf("the answer is not the upstream's body as it was: %q", body)
	}
	if a := got.header.Get("Authorization"); a != "Bearer sk-upstream-key" {
		t.Errorf("the upstream saw Authorization %q, want deer's key", a)
	}
	if resp.Header.Get("X-Echo") != "yes" || resp.Header.Get("X-Hop") != "" {
		t.Errorf("answer headers: end-to-end must pass, hop-by-hop must not: %v", resp.Header)
	}

	// Without a prefix the body goes through byte for byte.
	plain := strings.Replace(want, `"temperature" :0.50`, `"temperature" :0.25`, 1)
	if resp, body := h.send(http.MethodPost, "/v1/chat/completions", plain, sdkHeaders...); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := echo.last(t, "/v1/chat/completions"); got.body != plain {
		t.Errorf("the upstream got %q, want %q", got.body, plain)
	}
}

func TestEmbeddings(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	resp, body := h.send(http.MethodPost, "/v1/embeddings", `{"model": "sim-embed", "input": ["deer", "flow"]}`, sdkHeaders...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if list.Object != "list" || len(list.Data) != 2 || list.Data[1].Index != 1 || len(list.Data[0].Embedding) == 0 {
		t.Errorf("unexpected embeddings: %s", body)
	}
	if st := s.Stats(); st.EmbeddingInputs != 2 {
		t.Errorf("the upstream embedded %d inputs, want 2", st.EmbeddingInputs)
	}
}

func TestUpstreamRateLimitIsRelayedToOpenAIClients(t *testing.T) {
	k := sim.DefaultKnobs()
	k.Capacity, k.RetryAfter = 1, 7
	_, url := simUpstream(t, k, sim.WithClock(clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))))
	h := start(t, simConfig(t, url))
	// The frozen clock never refills the simulator's one token: the second
	// call is throttled, and with no retries left its 429 reaches the client
	// as the provider gave it.
	if resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("sim-model", "one", false), sdkHeaders...); resp.StatusCode != 200 {
		t.Fatalf("first call: %d %s", resp.StatusCode, body)
	}
	resp, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("sim-model", "two", false), sdkHeaders...)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("status %d, Retry-After %q, want 429 and 7: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	wantOpenAIError(t, resp, body, http.StatusTooManyRequests, "rate_limit_exceeded", "")
}

// sseReader yields server-sent events (each "data: …" block) as they arrive.
func sseReader(t *testing.T, r *bufio.Reader) <-chan string {
	events := make(chan string, 16)
	go func() {
		defer close(events)
		var ev strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\n" {
				events <- ev.String()
				ev.Reset()
				continue
			}
			ev.WriteString(line)
		}
	}()
	return events
}

func nextEvent(t *testing.T, events <-chan string, what string) string {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatalf("the stream ended before %s", what)
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	return ""
}

// streamingSim is a simulator whose stream intervals run on a clock the
// test moves: until it does, the upstream is mid-stream.
func streamingSim(t *testing.T, chunks int) (*sim.Simulator, *clock.Fake, string) {
	k := sim.DefaultKnobs()
	k.StreamChunks, k.StreamInterval = chunks, time.Second
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, url := simUpstream(t, k, sim.WithClock(clk))
	return s, clk, url
}

func TestChatCompletionStreamsChunkByChunk(t *testing.T) {
	s, simClock, url := streamingSim(t, 4)
	cfg := simConfig(t, url)
	// No warm-up: the pool's HEAD requests count in deersim's in-flight
	// number, which the test reads, and under load they can still be open.
	cfg.ConnectionPool.InitialConnections = 0
	h := start(t, cfg)
	t.Cleanup(s.Close) // before deerd's server closes: a stream left open ends
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("sim-model", "one two three four five six", true)))
	for i := 0; i+1 < len(sdkHeaders); i += 2 {
		req.Header.Set(sdkHeaders[i], sdkHeaders[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength != -1 || resp.Header.Get("X-Deer-Task-Id") == "" {
		t.Errorf("Content-Length %d (want none), X-Deer-Task-Id %q", resp.ContentLength, resp.Header.Get("X-Deer-Task-Id"))
	}
	events := sseReader(t, bufio.NewReader(resp.Body))

	// The first chunk arrives while the upstream still waits to send the
	// second: nothing is buffered whole.
	var content strings.Builder
	readChunk := func(what string) {
		ev := nextEvent(t, events, what)
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(ev), "data: ")), &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("%s: not a chunk (%v): %q", what, err, ev)
		}
		for _, ch := range c.Choices {
			content.WriteString(ch.Delta.Content)
		}
	}
	readChunk("the first chunk")
	if st := s.Stats(); st.InFlight != 1 {
		t.Fatalf("the upstream has finished (in flight %d): the first chunk was not relayed on its own", st.InFlight)
	}
	for i := 2; i <= 4; i++ {
		if !simClock.WaitForTimers(ctx, 1) {
			t.Fatal("the upstream did not wait for its next chunk")
		}
		simClock.Advance(time.Second)
		readChunk("the next chunk")
	}
	if ev := nextEvent(t, events, "[DONE]"); strings.TrimSpace(ev) != "data: [DONE]" {
		t.Errorf("last event %q, want data: [DONE]", ev)
	}
	if content.String() != "sim reply to: one two three four five six" {
		t.Errorf("streamed content %q", content.String())
	}
}

func TestClientLeavingAStreamReleasesTheUpstream(t *testing.T) {
	s, _, url := streamingSim(t, 5)
	cfg := simConfig(t, url)
	cfg.ParallelExecution.MaxWorkers = 1      // the next call needs the stream's worker back
	cfg.ConnectionPool.InitialConnections = 0 // warm-up HEADs would count in deersim's in-flight number
	h := start(t, cfg)
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streamCtx, leave := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(streamCtx, http.MethodPost, h.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("sim-model", "endless", true)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := sseReader(t, bufio.NewReader(resp.Body))
	nextEvent(t, events, "the first chunk")
	if s.Stats().InFlight != 1 {
		t.Fatalf("the upstream should be mid-stream")
	}
	leave() // the client hangs up while the upstream waits for its clock
	actortest.Eventually(t, "the upstream stream to be closed", func() bool { return s.Stats().InFlight == 0 })
	resp2, body := h.send(http.MethodPost, "/v1/chat/completions", chatBody("sim-model", "after", false), sdkHeaders...)
	if resp2.StatusCode != http.StatusOK || !strings.Contains(string(body), "sim reply to: after") {
		t.Errorf("the next call: %d %s", resp2.StatusCode, body)
	}
}

// FuzzOpenAIBody sends arbitrary bodies to the OpenAI-compatible endpoints:
// no server error, and deerd's own refusals are in OpenAI's shape.
func FuzzOpenAIBody(f *testing.F) {
	for _, seed := range []string{
		chatBody("sim-model", "hello", false),
		chatBody("sim/sim-model", "hello", true),
		`{"model": "sim-embed", "input": ["a", "b"]}`,
		`{"model": "sim/x", "model": "y", "stream": null}`,
		`{"model": 1}`, `{"model": "sim-model", "stream": "true"}`, `{"model": "\u0000/"}`,
		`{}`, `[]`, `null`, `"x"`, `{"model":`, ``,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	_, url := simUpstream(f, sim.DefaultKnobs())
	shared := start(f, simConfig(f, url))
	f.Fuzz(func(t *testing.T, body string, embeddings bool) {
		h := *shared
		h.t = t
		h.clk.Advance(time.Second) // the rate limiter's bucket refills on the harness's clock
		path := "/v1/chat/completions"
		if embeddings {
			path = "/v1/embeddings"
		}
		resp, answer := h.send(http.MethodPost, path, body, sdkHeaders...)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q: status %d: %s", path, body, resp.StatusCode, answer)
		}
		if resp.StatusCode >= 400 {
			var doc struct {
				Error *struct {
					Message string `json:"message"`
					Type    string `json:"type"`
				} `json:"error"`
			}
			if err := json.Unmarshal(answer, &doc); err != nil || doc.Error == nil || doc.Error.Message == "" || doc.Error.Type == "" {
				t.Fatalf("%s %q: status %d not in OpenAI's error shape: %s", path, body, resp.StatusCode, answer)
			}
		}
	})
}

// A buffered answer is framed with its Content-Length, not chunked, small
// (net/http measures it) or large (relay sets it), and its body comes back
// whole.
func TestRelayedAnswersHaveContentLength(t *testing.T) {
	echo := newEchoUpstream(t)
	cfg := simConfig(t, echo.url)
	up := conf.NewUpstream(echo.url)
	up.Models = []string{"m1"}
	cfg.Upstreams = map[string]conf.Upstream{"echo": up}
	h := start(t, cfg)
	for _, n := range []int{0, 100, 1023, 1024, 1025, 5000, 100000} {
		sent := `{"model":"m1","messages":[{"role":"user","content":"` + strings.Repeat("x", n) + `"}]}`
		resp, body := h.send(http.MethodPost, "/v1/chat/completions", sent)
		if resp.StatusCode != http.StatusOK || string(body) != sent {
			t.Fatalf("%d: status %d, body of %d bytes, want the %d sent", n, resp.StatusCode, len(body), len(sent))
		}
		if resp.ContentLength != int64(len(sent)) || len(resp.TransferEncoding) != 0 {
			t.Errorf("%d: Content-Length %d, Transfer-Encoding %v; want %d and none", n, resp.ContentLength, resp.TransferEncoding, len(sent))
		}
	}
}
