package httpab

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/sim"
)

// TestSSEChunkByChunk: the first event reaches the client while the
// upstream still holds the rest back.
func TestSSEChunkByChunk(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					return // the pool's warm-up HEAD
				}
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, "data: {\"n\":1}\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				fmt.Fprint(w, "data: {\"n\":2}\n\ndata: [DONE]\n\n")
			}))
			t.Cleanup(up.Close)
			t.Cleanup(func() { closeOnce(release) })
			url := serve(t, config(t, up.URL), v)
			resp, err := client(t).Post(url+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"sim-model","stream":true,"messages":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			br := bufio.NewReader(resp.Body)
			got := make(chan string, 1)
			go func() { line, _ := br.ReadString('\n'); got <- line }()
			select {
			case line := <-got:
				if line != "data: {\"n\":1}\n" {
					t.Fatalf("first line %q", line)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the first event did not arrive while the upstream held the rest")
			}
			closeOnce(release)
			rest, err := io.ReadAll(br)
			if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// TestClientDisconnectCancelsUpstream: a client that hangs up while its
// call waits on the upstream (JSON) or mid-stream (SSE) cancels the
// upstream call. With fasthttp's client a call waiting for its answer
// cannot be aborted (fasthttp takes no context and has no way to close a
// connection in use): the upstream keeps the call until it answers, which
// the test asserts, so that a fasthttp that learns to cancel shows up here.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	for _, v := range variants {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", v.name, stream), func(t *testing.T) {
				cancelled, started := make(chan struct{}), make(chan struct{}, 1)
				hold := make(chan struct{})
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodPost {
						return // the pool's warm-up HEAD
					}
					// Read to the end: only then does net/http watch the
					// connection and cancel r's context when it closes.
					_, _ = io.Copy(io.Discard, r.Body)
					if stream {
						w.Header().Set("Content-Type", "text/event-stream")
						fmt.Fprint(w, "data: {\"n\":1}\n\n")
						w.(http.Flusher).Flush()
					}
					started <- struct{}{}
					select {
					case <-r.Context().Done():
						close(cancelled)
					case <-hold:
					}
				}))
				t.Cleanup(up.Close)
				t.Cleanup(func() { closeOnce(hold) })
				url := serve(t, config(t, up.URL), v)
				conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				body := fmt.Sprintf(`{"model":"sim-model","stream":%v,"messages":[]}`, stream)
				fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				select {
				case <-started:
				case <-time.After(5 * time.Second):
					t.Fatal("the call did not reach the upstream")
				}
				if stream { // the first event has come through: hang up mid-stream
					br := bufio.NewReader(conn)
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							t.Fatalf("reading the stream: %v", err)
						}
						if strings.Contains(line, `"n":1`) {
							break
						}
					}
				}
				conn.Close()
				wantCancel := stream || !v.fastUp
				select {
				case <-cancelled:
					if !wantCancel {
						t.Fatal("fasthttp's client cancelled a call in flight: update the A/B's findings")
					}
				case <-time.After(2 * time.Second):
					if wantCancel {
						t.Fatal("the upstream call was not cancelled within 2 s of the client hanging up")
					}
				}
			})
		}
	}
}

// TestBodyLimit: a body over server.max_body_bytes is 413 in OpenAI's
// shape, and one within it is served.
func TestBodyLimit(t *testing.T) {
	s := sim.New(sim.DefaultKnobs())
	up := httptest.NewServer(s)
	t.Cleanup(up.Close)
	t.Cleanup(s.Close)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			cfg := config(t, up.URL)
			cfg.Server.MaxBodyBytes = 1 << 10
			url := serve(t, cfg, v)
			c := client(t)
			big := `{"model":"sim-model","messages":[{"role":"user","content":"` + strings.Repeat("x", 2<<10) + `"}]}`
			resp, err := c.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(big))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(b, []byte(`"body_too_large"`)) {
				t.Fatalf("over the limit: %d %s", resp.StatusCode, b)
			}
			resp, err = c.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Deer-Task-Id") == "" {
				t.Fatalf("within the limit: %d %s", resp.StatusCode, b)
			}
		})
	}
}

// BenchmarkHotRoute is one chat completion through each variant, in
// process and sequential: the same net/http client, the same simulator
// (latency 0) over loopback; only deerd's HTTP stack differs. ns/op and
// allocs/op include the client's and the simulator's share, equal on
// every side.
func BenchmarkHotRoute(b *testing.B) {
	s := sim.New(sim.DefaultKnobs())
	up := httptest.NewServer(s)
	b.Cleanup(up.Close)
	b.Cleanup(s.Close)
	body := []byte(`{"model":"sim-model","messages":[{"role":"user","content":"Say hello."}]}`)
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			url := serve(b, config(b, up.URL), v) + "/v1/chat/completions"
			c := client(b)
			call := func() {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer sk-bench")
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			for range 50 {
				call()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				call()
			}
		})
	}
}
