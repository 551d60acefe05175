package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
)

const chatBody = `{"model": "m", "messages": [{"role": "user", "content": "hi"}]}`

func TestErrorRateOne(t *testing.T) {
	k := quiet()
	k.ErrorRate = 1
	s, url := start(t, k)
	c := newClient(t, true)
	for _, path := range []string{chatPath, "/v1/embeddings", "/search"} {
		resp, body := do(t, c, "POST", url+path, `{}`)
		wantError(t, resp, body, http.StatusInternalServerError, "server_error", "")
	}
	resp, body := do(t, c, "GET", url+"/v1/models", "")
	wantError(t, resp, body, http.StatusInternalServerError, "server_error", "")
	// Control and stats are not subject to the knobs.
	if resp, _ := do(t, c, "GET", url+"/_stats", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/_stats answered %d", resp.StatusCode)
	}
	if st := s.Stats(); st.Statuses[500] != 4 || len(st.Statuses) != 1 {
		t.Errorf("statuses %v", st.Statuses)
	}
}

// TestSeededDrawsRepeat: the same seed and requests give the same outcomes.
func TestSeededDrawsRepeat(t *testing.T) {
	k := quiet()
	k.ErrorRate = 0.5
	outcomes := func() string {
		_, url := start(t, k, WithSeed(42))
		c := newClient(t, true)
		var b strings.Builder
		for range 32 {
			resp, _ := do(t, c, "POST", url+chatPath, chatBody)
			fmt.Fprintf(&b, "%d ", resp.StatusCode)
		}
		return b.String()
	}
	first, second := outcomes(), outcomes()
	if first != second {
		t.Errorf("seed 42 gave\n%s\nthen\n%s", first, second)
	}
	if !strings.Contains(first, "200") || !strings.Contains(first, "500") {
		t.Errorf("error_rate 0.5 gave %s", first)
	}
}

func TestCapacityAnswers429WithRetryAfter(t *testing.T) {
	fc := clock.NewFake(time.Unix(1700000000, 0))
	k := quiet()
	k.Capacity, k.RetryAfter = 2, 7
	s, url := start(t, k, WithClock(fc))
	c := newClient(t, true)
	for i := range 2 {
		if resp, body := do(t, c, "POST", url+chatPath, chatBody); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within capacity: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := do(t, c, "POST", url+chatPath, chatBody)
	wantError(t, resp, body, http.StatusTooManyRequests, "rate_limit_exceeded", "")
	if got := resp.Header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After = %q, want 7", got)
	}
	fc.Advance(time.Second)
	if resp, _ := do(t, c, "POST", url+chatPath, chatBody); resp.StatusCode != http.StatusOK {
		t.Errorf("after a second: %d", resp.StatusCode)
	}
	if st := s.Stats(); st.Statuses[200] != 3 || st.Statuses[429] != 1 || st.Requests[chatPath] != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestLatencyIsALowerBound(t *testing.T) {
	k := quiet()
	k.Latency = 50 * time.Millisecond
	_, url := start(t, k)
	c := newClient(t, true)
	began := time.Now()
	if resp, _ := do(t, c, "POST", url+"/v1/embeddings", `{"input": "x"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if took := time.Since(began); took < k.Latency {
		t.Errorf("took %v, want at least %v", took, k.Latency)
	}
	began = time.Now()
	do(t, c, "GET", url+"/v1/models", "", "X-Sim-Latency", "120ms")
	if took := time.Since(began); took < 120*time.Millisecond {
		t.Errorf("X-Sim-Latency 120ms: took %v", took)
	}
}

// TestClientGivingUpEndsTheWait: a client that cancels during the latency
// leaves nothing running on the server.
func TestClientGivingUpEndsTheWait(t *testing.T) {
	ctx := testCtx(t)
	fc := clock.NewFake(time.Unix(1700000000, 0))
	k := quiet()
	k.Latency = time.Hour
	s, url := start(t, k, WithClock(fc))
	reqCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		resp, err := send(reqCtx, newClient(t, false), "POST", url+chatPath, chatBody)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if !fc.WaitForTimers(ctx, 1) {
		t.Fatal("the latency wait never started")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	actortest.Eventually(t, "the handler to end", func() bool { return s.Stats().InFlight == 0 })
	if p := fc.Pending(); len(p) != 0 {
		t.Errorf("latency timer left pending: %v", p)
	}
	if st := s.Stats(); len(st.Statuses) != 0 {
		t.Errorf("an abandoned request must not count an answer: %v", st.Statuses)
	}
}

func TestHangReleasedWhenClientGivesUp(t *testing.T) {
	ctx := testCtx(t)
	k := quiet()
	k.HangRate = 1
	s, url := start(t, k)
	reqCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		// A POST with a body: the server must still notice the client leave.
		resp, err := send(reqCtx, newClient(t, false), "POST", url+"/v1/embeddings", `{"input": "x"}`)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	actortest.Eventually(t, "the request to hang", func() bool { return s.Stats().Hangs == 1 })
	select {
	case err := <-errc:
		t.Fatalf("hung request answered: %v", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	actortest.Eventually(t, "the hung handler to end", func() bool { return s.Stats().InFlight == 0 })
}

// TestShutdownReleasesHangsAndCutsWaits: Server's Shutdown drops hung
// requests and answers requests in their latency at once.
func TestShutdownReleasesHangsAndCutsWaits(t *testing.T) {
	ctx := testCtx(t)
	k := quiet()
	k.Latency = time.Hour
	s := New(k)
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.Server()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()

	hung, slow := make(chan error, 1), make(chan int, 1)
	go func() {
		resp, err := send(ctx, newClient(t, false), "POST", url+chatPath, chatBody, "X-Sim-Fault", "hang")
		if err == nil {
			resp.Body.Close()
		}
		hung <- err
	}()
	go func() {
		resp, err := send(ctx, newClient(t, false), "POST", url+chatPath, chatBody)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	actortest.Eventually(t, "both requests in flight", func() bool { st := s.Stats(); return st.InFlight == 2 && st.Hangs == 1 })

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
	if err := <-hung; err == nil {
		t.Error("the hung request got an answer")
	}
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the request in its latency got %d, want 200", code)
	}
}

func TestResetRateOneResetsTheConnection(t *testing.T) {
	k := quiet()
	k.ResetRate = 1
	s, url := start(t, k)
	c := newClient(t, false)
	_, err := send(testCtx(t), c, "POST", url+chatPath, chatBody)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %v, want connection reset by peer", err)
	}
	// The override works with the knob off, on any path.
	if err := s.SetKnobs(quiet()); err != nil {
		t.Fatal(err)
	}
	_, err = send(testCtx(t), c, "GET", url+"/v1/models", "", "X-Sim-Fault", "reset")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("X-Sim-Fault reset: got %v", err)
	}
	// The client sees the RST before the handler has returned.
	actortest.Eventually(t, "the handlers to end", func() bool { return s.Stats().InFlight == 0 })
	if st := s.Stats(); st.Resets != 2 || len(st.Statuses) != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOverrideHeaders(t *testing.T) {
	k := quiet()
	k.HangRate, k.ErrorRate = 1, 1
	_, url := start(t, k)
	c := newClient(t, true)
	// "none" rules out hang and reset; a forced 2xx skips error_rate.
	resp, body := do(t, c, "POST", url+chatPath, chatBody, "X-Sim-Fault", "none", "X-Sim-Status", "200")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "chat.completion") {
		t.Fatalf("forced 200: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, c, "POST", url+chatPath, chatBody, "X-Sim-Fault", "none")
	wantError(t, resp, body, http.StatusInternalServerError, "server_error", "")
	resp, body = do(t, c, "POST", url+chatPath, chatBody, "X-Sim-Fault", "none", "X-Sim-Status", "503")
	wantError(t, resp, body, http.StatusServiceUnavailable, "server_error", "")
	resp, body = do(t, c, "POST", url+chatPath, chatBody, "X-Sim-Fault", "none", "X-Sim-Status", "429")
	wantError(t, resp, body, http.StatusTooManyRequests, "rate_limit_exceeded", "")
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("forced 429 without Retry-After")
	}
	for _, h := range [][2]string{{"X-Sim-Status", "abc"}, {"X-Sim-Status", "100"}, {"X-Sim-Latency", "soon"}, {"X-Sim-Fault", "explode"}} {
		resp, body := do(t, c, "POST", url+chatPath, chatBody, h[0], h[1])
		wantError(t, resp, body, http.StatusBadRequest, "invalid_request_error", h[0])
	}
}

func TestControl(t *testing.T) {
	s, url := start(t, quiet())
	c := newClient(t, true)
	resp, body := do(t, c, "GET", url+"/_control", "")
	var got Knobs
	mustDecode(t, body, &got)
	if resp.StatusCode != http.StatusOK || got != quiet() {
		t.Fatalf("GET /_control: %d %s", resp.StatusCode, body)
	}

	resp, body = do(t, c, "POST", url+"/_control", `{"latency": "300ms", "error_rate": 0.1}`)
	want := quiet()
	want.Latency, want.ErrorRate = 300*time.Millisecond, 0.1
	got = Knobs{}
	mustDecode(t, body, &got)
	if resp.StatusCode != http.StatusOK || got != want || s.Knobs() != want {
		t.Fatalf("POST /_control: %d %s; knobs %+v", resp.StatusCode, body, s.Knobs())
	}

	for _, tc := range []struct{ body, param string }{
		{`{"bogus": 1}`, "bogus"},
		{`{"latency": "1s", "error_rate": 1.5}`, "error_rate"},
		{`{"stream_chunks": "many"}`, "stream_chunks"},
		{`{"latency": "soon"}`, "latency"},
		{`null`, ""},
		{`{"latency": `, ""},
	} {
		resp, body := do(t, c, "POST", url+"/_control", tc.body)
		e := wantError(t, resp, body, http.StatusBadRequest, "invalid_request_error", tc.param)
		if tc.param != "" && !strings.Contains(e.Error.Message, tc.param) {
			t.Errorf("%s: message %q does not name the key", tc.body, e.Error.Message)
		}
	}
	if s.Knobs() != want {
		t.Errorf("a rejected change altered the knobs: %+v", s.Knobs())
	}
	resp, body = do(t, c, "PUT", url+"/_control", `{}`)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "invalid_request_error", "")

	// Changes apply to the next request.
	do(t, c, "POST", url+"/_control", `{"latency": 0, "error_rate": 1}`)
	resp, _ = do(t, c, "POST", url+chatPath, chatBody)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("after error_rate 1: %d", resp.StatusCode)
	}
	do(t, c, "POST", url+"/_control", `{"error_rate": 0}`)
	resp, _ = do(t, c, "POST", url+chatPath, chatBody)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after error_rate 0: %d", resp.StatusCode)
	}
}

func TestStats(t *testing.T) {
	_, url := start(t, quiet())
	c := newClient(t, true)
	do(t, c, "POST", url+"/v1/embeddings", `{"input": ["a","b","c","d","e","f","g","h","i","j"]}`)
	do(t, c, "POST", url+"/v1/embeddings", `{"input": ["a","b","c","d","e","f","g","h","i","j"]}`)
	do(t, c, "POST", url+"/v1/embeddings", `{"input": ["a","b","c","d","e"]}`)
	do(t, c, "POST", url+chatPath, `{}`)
	do(t, c, "GET", url+"/nope", "")
	do(t, c, "GET", url+"/_control", "")

	resp, body := do(t, c, "GET", url+"/_stats", "")
	type stats struct {
		Requests             map[string]int64 `json:"requests"`
		Statuses             map[string]int64 `json:"statuses"`
		EmbeddingCalls       int64            `json:"embedding_calls"`
		EmbeddingInputs      int64            `json:"embedding_inputs"`
		EmbeddingInputCounts []int            `json:"embedding_input_counts"`
	}
	var st stats
	mustDecode(t, body, &st)
	if resp.StatusCode != http.StatusOK ||
		fmt.Sprint(st.Requests) != "map[/v1/chat/completions:1 /v1/embeddings:3 other:1]" ||
		fmt.Sprint(st.Statuses) != "map[200:3 400:1 404:1]" ||
		st.EmbeddingCalls != 3 || st.EmbeddingInputs != 25 || fmt.Sprint(st.EmbeddingInputCounts) != "[10 10 5]" {
		t.Fatalf("GET /_stats: %d %s", resp.StatusCode, body)
	}

	resp, body = do(t, c, "POST", url+"/_stats/reset", "")
	st = stats{}
	mustDecode(t, body, &st)
	if resp.StatusCode != http.StatusOK || len(st.Requests) != 0 || len(st.Statuses) != 0 ||
		st.EmbeddingCalls != 0 || st.EmbeddingInputs != 0 || len(st.EmbeddingInputCounts) != 0 {
		t.Fatalf("after reset: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(string(body), `"embedding_input_counts":[]`) {
		t.Errorf("an empty list must be [], not null: %s", body)
	}
	resp, body = do(t, c, "GET", url+"/_stats/reset", "")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "invalid_request_error", "")
}

func TestListenReportsAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	_, err = Listen(addr)
	want := "address " + addr + " already in use: is another deerd or deersim running?"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	var inUse *AddrInUseError
	if !errors.Is(err, ErrAddrInUse) || !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &inUse) || inUse.Addr != addr {
		t.Errorf("error %#v does not unwrap as documented", err)
	}
}

func TestServeUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	s := New(quiet())
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	if resp, _ := do(t, newClient(t, false), "GET", "http://"+ln.Addr().String()+"/v1/models", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener is still open")
	}
}
