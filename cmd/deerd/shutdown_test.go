package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/sim"
)

// heldSim is the simulator behind a gate: API calls wait until the gate
// opens, then the simulator answers them (after its latency).
type heldSim struct {
	sim     *sim.Simulator
	url     string
	arrived atomic.Int64
	gate    chan struct{}
	once    sync.Once
}

func newHeldSim(t testing.TB, k sim.Knobs) *heldSim {
	t.Helper()
	h := &heldSim{sim: sim.New(k), gate: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead { // HEAD: the pool's warm-up
			h.arrived.Add(1)
			select {
			case <-h.gate:
			case <-r.Context().Done():
				return
			}
		}
		h.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(h.sim.Close) // first: a simulated wait must not hold srv.Close up
	t.Cleanup(h.open)
	h.url = srv.URL
	return h
}

func (h *heldSim) open() { h.once.Do(func() { close(h.gate) }) }

// call is one client request's outcome.
type call struct {
	status int
	body   []byte
	err    error
}

func post(c *http.Client, url, body string) call {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return call{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return call{status: resp.StatusCode, body: b, err: err}
}

// cleanRefusal reports whether c is deerd's 503 shutting_down, whole.
func (c call) cleanRefusal() bool {
	var doc struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	return c.err == nil && c.status == http.StatusServiceUnavailable &&
		json.Unmarshal(c.body, &doc) == nil && doc.Error.Code == "shutting_down" && doc.Error.Message != ""
}

// TestShutdownUnderLoadLosesNothing: SIGTERM while 100 chat completions are
// accepted (20 at the upstream, 80 queued) answers every one of them in
// full; work arriving after the signal is refused with a clean 503
// shutting_down until the listener closes; deerd exits 0 and logs the drain
// with nothing abandoned, once, like every other shutdown line.
func TestShutdownUnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	const n = 100
	k := sim.DefaultKnobs()
	k.Latency = 200 * time.Millisecond
	up := newHeldSim(t, k)
	cfg := writeFile(t, "deer.toml", `default_upstream = "up"

[upstreams.up]
base_url = "`+up.url+`"
models = ["up-model"]
`)
	s := startDeerd(t, cleanEnv(t), "--config", cfg)
	workers := int(at(t, s.getJSON("/metrics", http.StatusOK), "advanced_optimizations.parallel_executor.workers").(float64))
	if workers >= n {
		t.Fatalf("%d workers: the test needs calls queued behind them", workers)
	}

	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	loaded := &http.Client{Transport: tr, Timeout: time.Minute}
	prompt := func(i int) string { return fmt.Sprintf("shutdown-%d", i) }
	chat := func(p string) string {
		return `{"model": "up-model", "messages": [{"role": "user", "content": "` + p + `"}]}`
	}
	answers := make([]call, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = post(loaded, s.url+"/v1/chat/completions", chat(prompt(i))) })
	}
	// Every call accepted: the workers' calls at the upstream, the rest queued.
	actortest.EventuallyWithin(t, 30*time.Second, "all calls to be accepted", func() bool {
		m := s.getJSON("/metrics", http.StatusOK)
		return up.arrived.Load() == int64(workers) &&
			at(t, m, "request_queue.size").(float64)+at(t, m, "advanced_optimizations.parallel_executor.active_tasks").(float64) == n
	})

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	actortest.EventuallyWithin(t, 30*time.Second, "the router to drain", func() bool {
		return at(t, s.getJSON("/metrics", http.StatusOK), "advanced_optimizations.parallel_executor.draining") == true
	})

	// The drain cannot end while the upstream holds the calls, so the
	// listener is open: new work is refused, cleanly.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	var late sync.WaitGroup
	lateAnswers := make([]call, 10)
	for i := range lateAnswers {
		late.Go(func() { lateAnswers[i] = post(fresh, s.url+"/v1/chat/completions", chat("late")) })
	}
	late.Wait()
	for _, c := range lateAnswers {
		if !c.cleanRefusal() {
			t.Errorf("a call during the drain: %d %v %s, want a clean 503 shutting_down", c.status, c.err, c.body)
		}
	}
	// From now on until the listener closes, calls get a clean refusal. The
	// first that fails ends the loop, counted apart: it met the listener
	// closing — connection refused, or EOF when http.Server.Shutdown had
	// begun by the time the request was read (net/http then closes the
	// connection without an answer).
	var refusedLate, unconnected atomic.Int64
	var connErr error // the error that ended the loop, read after lateDone
	lateDone := make(chan struct{})
	go func() {
		defer close(lateDone)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			c := post(fresh, s.url+"/v1/chat/completions", chat("late"))
			switch {
			case c.cleanRefusal():
				refusedLate.Add(1)
			case c.err != nil:
				unconnected.Add(1)
				connErr = c.err
				return
			default:
				t.Errorf("a call after SIGTERM: %d %s, want a clean 503 shutting_down", c.status, c.body)
				return
			}
		}
	}()

	up.open()
	wg.Wait()
	res := s.wait(shutdownGrace + 10*time.Second)
	<-lateDone
	if res.code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0:\n%s", res.code, res.stderr)
	}

	var bad int
	for i, c := range answers {
		var cc struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		err := c.err
		if err == nil {
			err = json.Unmarshal(c.body, &cc)
		}
		if err != nil || c.status != http.StatusOK || cc.Object != "chat.completion" || len(cc.Choices) != 1 ||
			cc.Choices[0].Message.Content != "sim reply to: "+prompt(i) {
			t.Errorf("call %d accepted before SIGTERM: status %d, error %v: %s", i, c.status, err, c.body)
			if bad++; bad > 5 {
				break
			}
		}
	}
	if got := up.sim.Stats().Requests["/v1/chat/completions"]; got != n {
		t.Errorf("the upstream got %d calls, want %d: refused work must not reach it", got, n)
	}
	// After the exit nothing listens.
	if c := post(fresh, s.url+"/v1/chat/completions", chat("after")); c.err == nil || !errors.Is(c.err, syscall.ECONNREFUSED) {
		t.Errorf("a call after deerd exited: %d %v, want connection refused", c.status, c.err)
	}
	t.Logf("after SIGTERM: %d calls refused with 503 shutting_down, %d failed as the listener closed (%v)",
		int64(len(lateAnswers))+refusedLate.Load(), unconnected.Load(), connErr)

	checkLogs(t, res.stderr, "deerd listening", "shutting down", "tasks drained", "stopped")
	checkShutdownOnce(t, res.stderr)
	var drained *struct{ Finished, Abandoned int }
	for _, line := range strings.Split(res.stderr, "\n") {
		var rec struct {
			Message             string
			Finished, Abandoned int
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Message == "tasks drained" {
			drained = &struct{ Finished, Abandoned int }{rec.Finished, rec.Abandoned}
		}
	}
	if drained == nil || drained.Finished != n || drained.Abandoned != 0 {
		t.Errorf("tasks drained %+v, want finished %d, abandoned 0:\n%s", drained, n, res.stderr)
	}
}
