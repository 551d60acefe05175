package deer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

// scripted is an upstream whose answer the test sets, recording when each
// request arrived.
type scripted struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	header http.Header
	gate   chan struct{}
	times  []time.Time
}

func newScripted(t *testing.T, status int) *scripted {
	u := &scripted{status: status}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.times = append(u.times, time.Now())
		status, header, gate := u.status, u.header, u.gate
		u.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		for k, vs := range header {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *scripted) set(status int, header http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status, u.header = status, header
}

func (u *scripted) calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.times)
}

func (u *scripted) arrivals() []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.times...)
}

func resilienceConfig(t testing.TB, url string) *conf.Config {
	cfg := testConfig(t)
	cfg.ConnectionPool.InitialConnections = 0
	cfg.Monitoring.DetailedLogging = false
	unlimited(cfg)
	// Identical calls here test retries and breakers, each on its own: the
	// cache and coalescing (cachepath_test.go) stay out of the way.
	up := conf.NewUpstream(url)
	up.Cache = "never"
	cfg.Upstreams = map[string]conf.Upstream{"up": up}
	return cfg
}

func getTask() *messages.Task { return &messages.Task{Upstream: "up", Method: "GET", Path: "/"} }

func get(rt *deer.Runtime) (*messages.TaskResult, error) {
	return rt.Submit(context.Background(), getTask())
}

// With 10% of answers 500, retries make nearly every task succeed without
// multiplying traffic.
func TestRetriesAbsorbInjectedServerErrors(t *testing.T) {
	s := sim.New(sim.Knobs{ErrorRate: 0.1, RetryAfter: 1, StreamChunks: 1}, sim.WithSeed(7))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	cfg := resilienceConfig(t, srv.URL)
	cfg.ErrorRecovery.BaseDelay, cfg.ErrorRecovery.MaxDelay = 0.002, 0.02
	// Scattered errors: at a 10% error rate, 5 failures in a row (the
	// default threshold) turn up in about 1 run of 100 of ~1,100 calls and
	// open the breaker for a minute; this test is about retries, and
	// operations.md advises a higher threshold for scattered errors.
	cfg.ErrorRecovery.CircuitBreakerThreshold = 10
	// Independent errors at 10%: with the default 3 retries a task fails
	// with chance 0.1^4, and 2 of 1,000 tasks (below 99.9%) fail in about 1
	// run of 200 (4 of 300 runs here). With 4 retries that is about 1 run
	// in 20,000; the expected traffic stays 1.111 x, under the bound below.
	cfg.ErrorRecovery.MaxRetries = 4
	rt := start(t, cfg)

	const n = 1000
	var ok, attempts atomic.Int64
	var codesMu sync.Mutex
	codes := map[string]int{}
	defer func() {
		if len(codes) > 0 {
			t.Logf("failures: %v", codes)
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "up", Method: "POST", Path: "/search", Body: []byte(`{"query":"q"}`)})
			if err != nil {
				t.Error(err)
				return
			}
			attempts.Add(int64(res.Attempts))
			if res.Status == messages.TaskSucceeded {
				ok.Add(1)
			} else if res.Err != nil {
				codesMu.Lock()
				codes[res.Err.Code+": "+res.Err.Message]++
				codesMu.Unlock()
			}
		}()
	}
	wg.Wait()
	upstreamCalls := s.Stats().Requests["/search"]
	t.Logf("%d/%d succeeded, %d attempts, upstream saw %d", ok.Load(), n, attempts.Load(), upstreamCalls)
	if float64(ok.Load()) < 0.999*n {
		t.Errorf("succeeded %d of %d, want >= 99.9%%", ok.Load(), n)
	}
	if float64(upstreamCalls) > 1.2*n || attempts.Load() != int64(upstreamCalls) {
		t.Errorf("upstream attempts %d (tasks counted %d), want <= 1.2 x %d", upstreamCalls, attempts.Load(), n)
	}
}

// A 429 with Retry-After: 2 holds every call to that upstream for 2 s: the
// task's retry and a new task alike.
func TestRetryAfterPausesTheUpstream(t *testing.T) {
	u := newScripted(t, http.StatusTooManyRequests)
	u.set(http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}})
	cfg := resilienceConfig(t, u.srv.URL)
	cfg.ErrorRecovery.BaseDelay, cfg.ErrorRecovery.MaxDelay = 0.01, 0.1 // far below Retry-After
	rt := start(t, cfg)

	first := goSubmit(t, rt, getTask())
	actortest.Eventually(t, "the first attempt", func() bool { return u.calls() == 1 })
	u.set(http.StatusOK, nil)
	// Calls that started before the 429 came back cannot be held; from the
	// moment the limiter knows, the whole upstream waits.
	actortest.Eventually(t, "the limiter to pause the upstream", func() bool {
		l := rt.Metrics(context.Background()).AdvancedOptimizations.RateLimiter.Upstreams["up"]
		return l != nil && l.PausedFor > 0
	})
	// A second task, submitted during the pause.
	res2, err := get(rt)
	if err != nil || res2.Status != messages.TaskSucceeded {
		t.Fatalf("second task: %+v %v", res2, err)
	}
	res1 := actortest.Await(t, "the first task's answer", first)
	if res1.Status != messages.TaskSucceeded || res1.Attempts != 2 {
		t.Fatalf("first task: %+v (err %+v)", res1, res1.Err)
	}
	times := u.arrivals()
	if len(times) != 3 {
		t.Fatalf("upstream saw %d calls, want 3", len(times))
	}
	for i, at := range times[1:] {
		if gap := at.Sub(times[0]); gap < 2*time.Second {
			t.Errorf("call %d reached the upstream %v after the 429, before its Retry-After of 2s", i+2, gap)
		}
	}
}

// A dead upstream opens its breaker after circuit_breaker_threshold
// failures; calls then fail fast without reaching it; after
// circuit_breaker_timeout one probe finds it back.
func TestBreakerOpensFailsFastAndProbesOnce(t *testing.T) {
	u := newScripted(t, http.StatusInternalServerError)
	cfg := resilienceConfig(t, u.srv.URL)
	cfg.ErrorRecovery.MaxRetries = 0 // one attempt per task: the count is exact
	cfg.ErrorRecovery.CircuitBreakerThreshold = 3
	cfg.ErrorRecovery.CircuitBreakerTimeout = 60
	clk := clock.NewFake(t0)
	rt := start(t, cfg, deer.WithClock(clk))

	for i := 0; i < 3; i++ {
		res, err := get(rt)
		if err != nil || res.UpstreamStatus != 500 {
			t.Fatalf("task %d: %+v %v", i, res, err)
		}
	}
	actortest.Eventually(t, "the breaker to open", func() bool {
		return rt.Metrics(context.Background()).AdvancedOptimizations.ErrorRecovery.CircuitBreakerState == "open"
	})
	for i := 0; i < 5; i++ {
		res, err := get(rt)
		if err != nil || res.Err == nil || res.Err.Code != messages.CodeCircuitOpen || res.Attempts != 0 {
			t.Fatalf("task while open (no attempt reaches the upstream): %+v %v", res, err)
		}
	}
	if u.calls() != 3 {
		t.Fatalf("upstream saw %d calls, want 3: an open breaker must not call it", u.calls())
	}

	// The upstream comes back; the breaker's timeout passes. Hold the probe
	// at the upstream: meanwhile other calls still fail fast.
	u.set(http.StatusOK, nil)
	gate := make(chan struct{})
	u.mu.Lock()
	u.gate = gate
	u.mu.Unlock()
	clk.Advance(60 * time.Second)
	probe := goSubmit(t, rt, getTask())
	actortest.Eventually(t, "the probe to reach the upstream", func() bool { return u.calls() == 4 })
	for i := 0; i < 3; i++ {
		res, err := get(rt)
		if err != nil || res.Err == nil || res.Err.Code != messages.CodeCircuitOpen {
			t.Fatalf("task during the probe: %+v %v", res, err)
		}
	}
	if u.calls() != 4 {
		t.Fatalf("upstream saw %d calls during the probe, want exactly the one probe", u.calls())
	}
	close(gate)
	if res := actortest.Await(t, "the probe's answer", probe); res.Status != messages.TaskSucceeded {
		t.Fatalf("probe: %+v", res.Err)
	}
	actortest.Eventually(t, "the breaker to close", func() bool {
		return rt.Metrics(context.Background()).AdvancedOptimizations.ErrorRecovery.CircuitBreakerState == "closed"
	})
	if res, err := get(rt); err != nil || res.Status != messages.TaskSucceeded {
		t.Fatalf("after closing: %+v %v", res, err)
	}
}

// An open breaker on one endpoint sends calls to another endpoint of the
// same upstream.
func TestOpenEndpointSendsCallsToAnotherEndpoint(t *testing.T) {
	bad := newScripted(t, http.StatusInternalServerError)
	good := newScripted(t, http.StatusOK)
	cfg := resilienceConfig(t, bad.srv.URL)
	up := cfg.Upstreams["up"]
	up.Endpoints = []string{good.srv.URL}
	cfg.Upstreams["up"] = up
	cfg.ErrorRecovery.MaxRetries = 0
	cfg.ErrorRecovery.CircuitBreakerThreshold = 2
	cfg.ParallelExecution.LoadBalancing = false // every call prefers base_url while its breaker is closed
	rt := start(t, cfg, deer.WithClock(clock.NewFake(t0)))

	for i := 0; i < 2; i++ {
		if res, err := get(rt); err != nil || res.UpstreamStatus != 500 {
			t.Fatalf("call %d to the failing endpoint: %+v %v", i, res, err)
		}
	}
	actortest.Eventually(t, "the base_url breaker to open", func() bool {
		return rt.Metrics(context.Background()).AdvancedOptimizations.ErrorRecovery.CircuitBreakerState == "open"
	})
	for i := 0; i < 5; i++ {
		res, err := get(rt)
		if err != nil || res.Status != messages.TaskSucceeded {
			t.Fatalf("call %d with base_url open: %+v %v", i, res, err)
		}
	}
	if bad.calls() != 2 || good.calls() != 5 {
		t.Errorf("failing endpoint saw %d calls (want 2), the other %d (want 5)", bad.calls(), good.calls())
	}
}

// Workers skip reporting a success to a closed breaker that has counted no
// failure (breaker.Board.Quiet); those successes must still count as calls
// in the failure window, or scattered failures would reach
// failure_rate_threshold and open a working endpoint.
func TestSuccessBetweenFailuresKeepsTheBreakerClosed(t *testing.T) {
	u := newScripted(t, http.StatusInternalServerError)
	cfg := resilienceConfig(t, u.srv.URL)
	cfg.ErrorRecovery.MaxRetries = 0
	cfg.ErrorRecovery.CircuitBreakerThreshold = 3
	rt := start(t, cfg, deer.WithClock(clock.NewFake(t0)))
	state := func() string {
		// A round trip to the breaker: the reports sent before it are processed.
		return rt.Metrics(context.Background()).AdvancedOptimizations.ErrorRecovery.CircuitBreakerState
	}
	run := func(status int) {
		t.Helper()
		u.set(status, nil)
		if res, err := get(rt); err != nil || res.UpstreamStatus != status {
			t.Fatalf("task against %d: %+v %v", status, res, err)
		}
	}
	run(http.StatusInternalServerError)
	run(http.StatusInternalServerError)
	state() // both failures counted: 2 failures in 2 calls
	run(http.StatusOK)
	state() // the success was reported (it resets the failures): 2 in 3
	for range 3 {
		run(http.StatusOK) // quiet successes: counted on the board, no message
	}
	run(http.StatusInternalServerError)
	if got := state(); got != "closed" {
		t.Fatalf("breaker %s after 3 failures in 7 calls (rate threshold 0.5): the successes were not counted", got)
	}
	run(http.StatusInternalServerError)
	if got := state(); got != "open" {
		t.Fatalf("breaker %s after 4 failures in 8 calls, want open", got)
	}
}
