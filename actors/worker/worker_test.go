package worker

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// harness runs worker/1 under a parent that stands in for the router: what
// the worker reports to its parent arrives on out. pool/sim is real; the
// limiter is absent (the call goes without tokens).
type harness struct {
	system *actor.ActorSystem
	clk    *clock.Fake // the worker's: retry waits run on it
	reg    *supervisor.Registry
	worker *actor.PID
	out    chan any
}

// upstream is an HTTP upstream counting its calls.
type upstream struct {
	*httptest.Server
	calls atomic.Int32
}

func newUpstream(t *testing.T, h func(n int32, w http.ResponseWriter, r *http.Request)) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(u.calls.Add(1), w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func testConfig(up conf.Upstream, mut func(*conf.Config)) *conf.Config {
	cfg := conf.Default()
	cfg.ConnectionPool.InitialConnections = 0
	cfg.Upstreams = map[string]conf.Upstream{"sim": up}
	if mut != nil {
		mut(cfg)
	}
	return cfg
}

func start(t *testing.T, cfg *conf.Config, board *breaker.Board) *harness {
	t.Helper()
	h := &harness{
		system: actortest.NewSystem(t),
		clk:    clock.NewFake(t0),
		reg:    supervisor.NewRegistry(),
		out:    make(chan any, 16),
	}
	live := conf.NewLive(cfg)
	// The pool keeps its own clock: its reclaim timer is not the worker's.
	poolPID := actortest.Spawn(t, h.system, pool.Props(pool.Deps{
		Name: "pool/sim", Upstream: "sim", Live: live, Clock: clock.NewFake(t0), Log: zerolog.Nop(), Metrics: metrics.NewSet(),
	}))
	h.reg.Register("pool/sim", "upstreams", poolPID)
	spawned := make(chan *actor.PID, 1)
	actortest.Spawn(t, h.system, actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			spawned <- ctx.Spawn(Props(Deps{
				Name: "worker/1", Live: live, Clock: h.clk, Log: zerolog.Nop(), Registry: h.reg, Board: board,
			}))
		case *Finished, *Idle:
			h.out <- m
		case *messages.Ping:
			ctx.Respond(&messages.Pong{})
		}
	}))
	h.worker = <-spawned
	return h
}

func (h *harness) run(id string, task messages.Task) {
	task.ID, task.Upstream = id, "sim"
	h.system.Root.Send(h.worker, &Run{Task: &task, Timeout: time.Minute})
}

// finished waits for the worker's report of task id.
func (h *harness) finished(t *testing.T, id string, idle bool) *messages.TaskResult {
	t.Helper()
	f := actortest.Recv[*Finished](t, h.out)
	if f.ID != id || f.Worker == nil || f.Worker.Id != h.worker.Id || f.Idle != idle || f.Result == nil {
		t.Fatalf("Finished %+v, want task %s from %s, idle %v", f, id, h.worker.Id, idle)
	}
	return f.Result
}

func TestWorkerRunsATask(t *testing.T) {
	t.Setenv("DEER_WORKER_TEST_KEY", "k1")
	up := newUpstream(t, func(_ int32, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/echo" || r.Header.Get("Authorization") != "Bearer k1" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Upstream", "yes")
		w.Write(body)
	})
	u := conf.NewUpstream(up.URL)
	u.APIKeyEnv = "DEER_WORKER_TEST_KEY"
	h := start(t, testConfig(u, nil), nil)

	h.run("t1", messages.Task{Path: "/v1/echo", Body: []byte(`{"q":1}`), Header: map[string][]string{"Authorization": {"Bearer caller"}}})
	res := h.finished(t, "t1", true)
	if res.Status != messages.TaskSucceeded || res.UpstreamStatus != 200 || string(res.Body) != `{"q":1}` ||
		http.Header(res.Header).Get("X-Upstream") != "yes" || res.Attempts != 1 || res.Cache != messages.CacheMiss {
		t.Fatalf("result %+v err %+v", res, res.Err)
	}
	// Free again: the next task runs.
	h.run("t2", messages.Task{Path: "/v1/echo", Cache: messages.CacheBypass})
	if res := h.finished(t, "t2", true); res.Status != messages.TaskSucceeded || res.Cache != messages.CacheBypass {
		t.Fatalf("second task %+v %+v", res, res.Err)
	}
	if n := up.calls.Load(); n != 2 {
		t.Fatalf("upstream calls %d, want 2", n)
	}
}

func TestWorkerRetriesOnItsClock(t *testing.T) {
	up := newUpstream(t, func(n int32, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			io.WriteString(w, "ok")
		}
	})
	h := start(t, testConfig(conf.NewUpstream(up.URL), func(c *conf.Config) {
		c.ErrorRecovery.MaxRetries = 2
		c.ErrorRecovery.BaseDelay = 2
		c.ErrorRecovery.JitterEnabled = false
	}), nil)

	h.run("t1", messages.Task{Path: "/x"})
	actortest.Timers(t, h.clk, 2*time.Second) // base_delay
	h.clk.Advance(2 * time.Second)
	actortest.Eventually(t, "the second call", func() bool { return up.calls.Load() == 2 })
	actortest.Timers(t, h.clk, 5*time.Second) // base_delay·2 = 4 s, but the upstream asked for 5
	h.clk.Advance(5 * time.Second)
	res := h.finished(t, "t1", true)
	if res.Status != messages.TaskSucceeded || string(res.Body) != "ok" || res.Attempts != 3 {
		t.Fatalf("result %+v %+v, want success after 3 attempts", res, res.Err)
	}
}

func TestWorkerRetriesAtMostMaxRetries(t *testing.T) {
	up := newUpstream(t, func(_ int32, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	h := start(t, testConfig(conf.NewUpstream(up.URL), func(c *conf.Config) {
		c.ErrorRecovery.MaxRetries = 1
		c.ErrorRecovery.BaseDelay = 1
		c.ErrorRecovery.JitterEnabled = false
	}), nil)
	h.run("t1", messages.Task{Path: "/x"})
	actortest.Timers(t, h.clk, time.Second)
	h.clk.Advance(time.Second)
	res := h.finished(t, "t1", true)
	if res.Status != messages.TaskFailed || res.Err.Code != messages.CodeUpstream || res.UpstreamStatus != http.StatusBadGateway || res.Attempts != 2 {
		t.Fatalf("result %+v %+v, want upstream_error after 2 attempts", res, res.Err)
	}
}

func TestWorkerCancelsTheRunningCall(t *testing.T) {
	reached := make(chan struct{}, 1)
	up := newUpstream(t, func(_ int32, _ http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-r.Context().Done()
	})
	h := start(t, testConfig(conf.NewUpstream(up.URL), nil), nil)
	h.run("t1", messages.Task{Path: "/slow"})
	select {
	case <-reached:
	case <-time.After(actortest.Wait):
		t.Fatal("the call did not reach the upstream")
	}
	h.system.Root.Send(h.worker, &Cancel{ID: "t1"})
	res := h.finished(t, "t1", true)
	if res.Status != messages.TaskFailed || res.Err.Code != messages.CodeCancelled || res.Attempts != 1 {
		t.Fatalf("result %+v %+v, want cancelled after the 1 attempt that reached the upstream", res, res.Err)
	}
}

// A call cancelled between attempts says how many it made and what the
// upstream last answered, rather than 0 attempts.
func TestWorkerCancelledWhileWaitingToRetryReportsItsAttempts(t *testing.T) {
	up := newUpstream(t, func(_ int32, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	h := start(t, testConfig(conf.NewUpstream(up.URL), func(c *conf.Config) {
		c.ErrorRecovery.MaxRetries = 5
		c.ErrorRecovery.BaseDelay = 1
		c.ErrorRecovery.JitterEnabled = false
	}), nil)
	h.run("t1", messages.Task{Path: "/x"})
	actortest.Timers(t, h.clk, time.Second)
	h.clk.Advance(time.Second)
	actortest.Eventually(t, "the second call", func() bool { return up.calls.Load() == 2 })
	actortest.Timers(t, h.clk, 2*time.Second) // waiting for the third attempt
	h.system.Root.Send(h.worker, &Cancel{ID: "t1"})
	res := h.finished(t, "t1", true)
	if res.Status != messages.TaskFailed || res.Err.Code != messages.CodeCancelled || res.Attempts != 2 ||
		res.UpstreamStatus != http.StatusServiceUnavailable {
		t.Fatalf("result %+v %+v, want cancelled after 2 attempts, the last answered 503", res, res.Err)
	}
}

func TestWorkerIsIdleWhenItsStreamIsClosed(t *testing.T) {
	up := newUpstream(t, func(_ int32, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/plain" {
			io.WriteString(w, "plain")
			return
		}
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the receiver closes the stream
	})
	h := start(t, testConfig(conf.NewUpstream(up.URL), nil), nil)
	h.run("t1", messages.Task{Path: "/stream", Stream: true})
	res := h.finished(t, "t1", false)
	if res.Status != messages.TaskSucceeded || res.Stream == nil || res.Body != nil {
		t.Fatalf("result %+v, want a stream", res)
	}
	buf := make([]byte, len("data: 1\n\n"))
	if _, err := io.ReadFull(res.Stream, buf); err != nil || string(buf) != "data: 1\n\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	res.Stream.Close()
	if idle := actortest.Recv[*Idle](t, h.out); idle.ID != "t1" || idle.Worker.Id != h.worker.Id {
		t.Fatalf("Idle %+v", idle)
	}
	res.Stream.Close() // once only
	h.run("t2", messages.Task{Path: "/plain"})
	if res := h.finished(t, "t2", true); string(res.Body) != "plain" {
		t.Fatalf("after the stream: %+v %+v", res, res.Err)
	}
}

// fakeBreaker grants or refuses probes (gen 0 refuses) and forwards what it
// is sent to seen.
func fakeBreaker(t *testing.T, h *harness, name string, gen uint64, seen chan any) {
	pid := actortest.Spawn(t, h.system, actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.CheckBreaker:
			seen <- m
			ctx.Send(m.ReplyTo, &messages.BreakerVerdict{ID: m.ID, Allowed: gen != 0, Generation: gen})
		case *messages.ReportResult:
			seen <- m
		case *messages.Ping:
			ctx.Respond(&messages.Pong{})
		}
	}))
	h.reg.Register(name, "upstreams", pid)
}

func TestWorkerRoutesByTheBreakerBoard(t *testing.T) {
	hit := func(name string) func(int32, http.ResponseWriter, *http.Request) {
		return func(_ int32, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }
	}
	epA, epB := newUpstream(t, hit("a")), newUpstream(t, hit("b"))
	u := conf.NewUpstream(epA.URL)
	u.Endpoints = []string{epB.URL}
	eps := u.EndpointURLs()
	board := breaker.NewBoard()
	h := start(t, testConfig(u, nil), board)
	seenA, seenB := make(chan any, 8), make(chan any, 8)
	fakeBreaker(t, h, breaker.ActorName("sim", eps, 0), 7, seenA)
	fakeBreaker(t, h, breaker.ActorName("sim", eps, 1), 0, seenB)

	// A open, not due: the calls go to B.
	board.Set(breaker.Entry{Upstream: "sim", Endpoint: eps[0], State: breaker.Open, Generation: 6, OpenUntil: t0.Add(time.Minute)})
	board.Set(breaker.Entry{Upstream: "sim", Endpoint: eps[1], State: breaker.Closed, Generation: 2})
	h.run("t1", messages.Task{Path: "/"})
	if res := h.finished(t, "t1", true); string(res.Body) != "b" {
		t.Fatalf("with A open: %+v %+v, want B's answer", res, res.Err)
	}

	// A due: it is probed first, though B works; its breaker grants the
	// probe, and the success is reported with the probe's generation.
	h.clk.Advance(time.Minute)
	h.run("t2", messages.Task{Path: "/"})
	if res := h.finished(t, "t2", true); string(res.Body) != "a" {
		t.Fatalf("with A due: %+v %+v, want A's answer", res, res.Err)
	}
	actortest.Recv[*messages.CheckBreaker](t, seenA)
	if r := actortest.Recv[*messages.ReportResult](t, seenA); r.Generation != 7 || !r.Success || r.Counted {
		t.Fatalf("A's report %+v, want a success at generation 7", r)
	}

	// Both open, not due: circuit_open, no call.
	board.Set(breaker.Entry{Upstream: "sim", Endpoint: eps[0], State: breaker.Open, Generation: 8, OpenUntil: h.clk.Now().Add(20 * time.Second)})
	board.Set(breaker.Entry{Upstream: "sim", Endpoint: eps[1], State: breaker.Open, Generation: 3, OpenUntil: h.clk.Now().Add(45 * time.Second)})
	h.run("t3", messages.Task{Path: "/"})
	res := h.finished(t, "t3", true)
	if res.Status != messages.TaskFailed || res.Err.Code != messages.CodeCircuitOpen || !strings.Contains(res.Err.Message, "next probe is in 20s") || res.Attempts != 0 {
		t.Fatalf("all open: %+v %+v, want circuit_open, next probe in 20s", res, res.Err)
	}
	if a, b := epA.calls.Load(), epB.calls.Load(); a != 1 || b != 1 {
		t.Fatalf("calls: A %d, B %d; want 1 each", a, b)
	}
	// B's mailbox holds anything t1 reported ahead of this round trip.
	pidB, _ := h.reg.PID(breaker.ActorName("sim", eps, 1))
	actortest.Ask[*messages.Pong](t, h.system, pidB, &messages.Ping{})
	if len(seenB) != 0 {
		t.Fatalf("B's breaker was sent %T: a closed breaker's success is not reported", <-seenB)
	}
}

func TestWorkerAnswersAdminMessages(t *testing.T) {
	h := start(t, testConfig(conf.NewUpstream("http://127.0.0.1:1"), nil), nil)
	if p := actortest.Ask[*messages.Pong](t, h.system, h.worker, &messages.Ping{Seq: 3}); p.Actor != "worker/1" || p.Seq != 3 {
		t.Fatalf("pong %+v", p)
	}
	if s := actortest.Ask[*messages.StatusReport](t, h.system, h.worker, &messages.StatusQuery{}); s.State != messages.StateHealthy || s.Actor != "worker/1" {
		t.Fatalf("status %+v", s)
	}
	if s := actortest.Ask[*messages.StatsReport](t, h.system, h.worker, &messages.StatsQuery{}); s.Actor != "worker/1" {
		t.Fatalf("stats %+v", s)
	}
	if c := actortest.Ask[*messages.ConfigApplied](t, h.system, h.worker, &messages.ApplyConfig{Config: conf.Default()}); c.Actor != "worker/1" {
		t.Fatalf("config %+v", c)
	}
	// Unknown messages are logged, not fatal; Hang holds the worker until
	// released, and it answers again after.
	h.system.Root.Send(h.worker, "nonsense")
	release := make(chan struct{})
	h.system.Root.Send(h.worker, &Hang{Release: release})
	pong := h.system.Root.RequestFuture(h.worker, &messages.Ping{Seq: 4}, actortest.Wait)
	close(release)
	if r, err := pong.Result(); err != nil || r.(*messages.Pong).Seq != 4 {
		t.Fatalf("after Hang: %v %v", r, err)
	}
}
