package breaker

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

const endpoint = "http://127.0.0.1:8001"

type fixture struct {
	system *actor.ActorSystem
	pid    *actor.PID
	live   *conf.Live
	clock  *clock.Fake
	set    *metrics.Set
	logs   *actortest.SyncBuffer
	events chan *messages.BreakerStateChanged
	board  *Board
}

// testConfig: threshold 3, timeout 10s.
func testConfig(mut func(*conf.Config)) *conf.Config {
	cfg := conf.Default()
	cfg.ErrorRecovery.CircuitBreakerThreshold = 3
	cfg.ErrorRecovery.CircuitBreakerTimeout = 10
	if mut != nil {
		mut(cfg)
	}
	return cfg
}

func start(t *testing.T, cfg *conf.Config) *fixture {
	t.Helper()
	f := &fixture{
		system: actortest.NewSystem(t),
		live:   conf.NewLive(cfg),
		clock:  clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		set:    metrics.NewSet(),
		logs:   &actortest.SyncBuffer{},
		events: make(chan *messages.BreakerStateChanged, 16),
		board:  NewBoard(),
	}
	sub := f.system.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*messages.BreakerStateChanged); ok {
			f.events <- e
		}
	})
	t.Cleanup(func() { f.system.EventStream.Unsubscribe(sub) })
	f.pid = actortest.Spawn(t, f.system, actortest.Panicky(Props(Deps{
		Name: "breaker/sim/0", Upstream: "sim", Endpoint: endpoint, Live: f.live, Clock: f.clock,
		Log: zerolog.New(f.logs), Metrics: f.set, Board: f.board,
	})))
	return f
}

func (f *fixture) check(t *testing.T) *messages.BreakerVerdict {
	return actortest.Ask[*messages.BreakerVerdict](t, f.system, f.pid, &messages.CheckBreaker{})
}

func (f *fixture) report(gen uint64, success bool, retryAfter time.Duration) {
	f.system.Root.Send(f.pid, &messages.ReportResult{Generation: gen, Success: success, RetryAfter: retryAfter})
}

func (f *fixture) stats(t *testing.T) *messages.BreakerStats {
	return actortest.Stats[*messages.BreakerStats](t, f.system, f.pid)
}

func (f *fixture) status(t *testing.T) *messages.StatusReport {
	return actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{})
}

func (f *fixture) apply(t *testing.T, cfg *conf.Config) {
	t.Helper()
	f.live.Store(cfg)
	if r := actortest.Ask[*messages.ConfigApplied](t, f.system, f.pid, &messages.ApplyConfig{Config: cfg}); r.Err != "" || r.Actor != "breaker/sim/0" {
		t.Fatalf("ConfigApplied %+v", r)
	}
}

// failN lets n calls through and reports each as failed.
func (f *fixture) failN(t *testing.T, n int) {
	t.Helper()
	for range n {
		v := f.check(t)
		if !v.Allowed {
			t.Fatalf("call refused: %+v", v)
		}
		f.report(v.Generation, false, 0)
	}
	f.stats(t) // the reports are processed
}

func (f *fixture) event(t *testing.T, state string) {
	t.Helper()
	select {
	case e := <-f.events:
		if e.State != state || e.Upstream != "sim" || e.Endpoint != endpoint {
			t.Fatalf("event %+v, want state %s", e, state)
		}
	case <-time.After(actortest.Wait):
		t.Fatalf("no %s event", state)
	}
}

func (f *fixture) metric(t *testing.T, want string) {
	t.Helper()
	var b bytes.Buffer
	f.set.WritePrometheus(&b)
	if !strings.Contains(b.String(), want) {
		t.Fatalf("metrics lack %q:\n%s", want, b.String())
	}
}

func TestAdminMessages(t *testing.T) {
	f := start(t, testConfig(nil))
	if p := actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{Seq: 5}); p.Seq != 5 || p.Actor != "breaker/sim/0" {
		t.Fatalf("pong %+v", p)
	}
	if s := f.status(t); s.State != messages.StateHealthy {
		t.Fatalf("status %+v", s)
	}
	st := f.stats(t)
	if st.Upstream != "sim" || st.Endpoint != endpoint || !st.Enabled || st.State != "closed" || st.Threshold != 3 || st.OpenTimeout != 10 {
		t.Fatalf("stats %+v", st)
	}
	f.metric(t, `deer_breaker_state{upstream="sim",endpoint="http://127.0.0.1:8001"} 0`)
	f.system.Root.Send(f.pid, struct{}{})
	actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{})
}

func TestOpenProbeClose(t *testing.T) {
	f := start(t, testConfig(nil))
	f.failN(t, 2)
	if v := f.check(t); !v.Allowed || v.State != "closed" {
		t.Fatalf("after 2 failures %+v", v)
	}
	f.failN(t, 1)
	v := f.check(t)
	if v.Allowed || v.State != "open" || v.RetryIn != 10*time.Second {
		t.Fatalf("after 3 failures %+v", v)
	}
	f.event(t, "open")
	if s := f.status(t); s.State != messages.StateDegraded || !strings.Contains(s.Detail, "after 3 failures in 3 calls within 10s") {
		t.Fatalf("status %+v", s)
	}
	f.metric(t, `deer_breaker_state{upstream="sim",endpoint="http://127.0.0.1:8001"} 2`)
	actortest.Timers(t, f.clock, 10*time.Second)

	f.clock.Advance(10 * time.Second) // the timer turns it half_open on its own
	f.event(t, "half_open")
	f.metric(t, `deer_breaker_state{upstream="sim",endpoint="http://127.0.0.1:8001"} 1`)
	probe := f.check(t)
	if !probe.Allowed || probe.State != "half_open" {
		t.Fatalf("probe %+v", probe)
	}
	if v := f.check(t); v.Allowed {
		t.Fatalf("second call in half_open allowed: %+v", v)
	}
	f.report(probe.Generation, true, 0)
	f.event(t, "closed")
	if v := f.check(t); !v.Allowed || v.State != "closed" {
		t.Fatalf("after the probe succeeded %+v", v)
	}
	st := f.stats(t)
	if st.Opens != 1 || st.ConsecutiveFailures != 0 || st.State != "closed" {
		t.Fatalf("stats %+v", st)
	}
	for _, tr := range []string{`"from":"closed","to":"open"`, `"from":"open","to":"half_open"`, `"from":"half_open","to":"closed"`} {
		if n := f.logs.Count(tr); n != 1 {
			t.Errorf("%d log lines for %s, want 1", n, tr)
		}
	}
	actortest.Timers(t, f.clock) // none left
}

func TestProbeFailureReopens(t *testing.T) {
	f := start(t, testConfig(nil))
	f.failN(t, 3)
	actortest.Timers(t, f.clock, 10*time.Second)
	f.clock.Advance(10 * time.Second)
	probe := f.check(t)
	if !probe.Allowed {
		t.Fatalf("probe %+v", probe)
	}
	f.clock.Advance(time.Second) // the lost-probe timer is 9s away now
	f.report(probe.Generation, false, 0)
	if v := f.check(t); v.Allowed || v.State != "open" || v.RetryIn != 10*time.Second {
		t.Fatalf("after a failed probe %+v", v)
	}
	if st := f.stats(t); st.Opens != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStaleResultsIgnored(t *testing.T) {
	f := start(t, testConfig(nil))
	slow := f.check(t) // a call that will answer late
	f.failN(t, 3)
	f.report(slow.Generation, true, 0) // from before the opening: must not close it
	if v := f.check(t); v.Allowed || v.State != "open" {
		t.Fatalf("a stale success changed the breaker: %+v", v)
	}
}

func TestRetryAfterHoldsItOpen(t *testing.T) {
	f := start(t, testConfig(nil))
	f.failN(t, 2)
	v := f.check(t)
	f.report(v.Generation, false, 30*time.Second)
	actortest.Timers(t, f.clock, 30*time.Second)
	f.clock.Advance(10 * time.Second)
	if v := f.check(t); v.Allowed || v.RetryIn != 20*time.Second {
		t.Fatalf("at the plain timeout %+v", v)
	}
}

func TestApplyConfigLive(t *testing.T) {
	t.Run("threshold", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.failN(t, 1)
		f.apply(t, testConfig(func(c *conf.Config) { c.ErrorRecovery.CircuitBreakerThreshold = 2 }))
		if st := f.stats(t); st.Threshold != 2 || st.State != "closed" {
			t.Fatalf("stats %+v", st)
		}
		f.failN(t, 1)
		if v := f.check(t); v.Allowed || v.State != "open" {
			t.Fatalf("2 failures with threshold 2: %+v", v)
		}
	})
	t.Run("threshold lowered below the count opens now", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.failN(t, 2)
		f.apply(t, testConfig(func(c *conf.Config) { c.ErrorRecovery.CircuitBreakerThreshold = 1 }))
		if v := f.check(t); v.Allowed || v.State != "open" {
			t.Fatalf("%+v", v)
		}
	})
	t.Run("timeout re-evaluates an open breaker", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.failN(t, 3)
		actortest.Timers(t, f.clock, 10*time.Second)
		f.clock.Advance(4 * time.Second)
		f.apply(t, testConfig(func(c *conf.Config) { c.ErrorRecovery.CircuitBreakerTimeout = 60 }))
		actortest.Timers(t, f.clock, 56*time.Second)
		if st := f.stats(t); st.OpenTimeout != 60 || st.RetryIn != 56 {
			t.Fatalf("stats %+v", st)
		}
		f.apply(t, testConfig(func(c *conf.Config) { c.ErrorRecovery.CircuitBreakerTimeout = 2 }))
		// Opened 4s ago: a 2s timeout is already over.
		if st := f.stats(t); st.State != "half_open" {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("failure rate lowered below the window's share opens now", func(t *testing.T) {
		f := start(t, testConfig(nil))
		for range 4 {
			f.report(0, true, 0)
		}
		f.failN(t, 3) // 3 of 7 calls
		if st := f.stats(t); st.State != "closed" {
			t.Fatalf("stats %+v", st)
		}
		f.apply(t, testConfig(func(c *conf.Config) { c.ErrorRecovery.FailureRateThreshold = 0.4 }))
		if v := f.check(t); v.Allowed || v.State != "open" {
			t.Fatalf("%+v", v)
		}
	})
	t.Run("failure window", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.failN(t, 2)
		f.apply(t, testConfig(func(c *conf.Config) { c.ErrorRecovery.FailureWindow = 2 }))
		f.failN(t, 1) // the new window starts afresh: 1 failure
		f.clock.Advance(2 * time.Second)
		f.failN(t, 2) // the one 2 s ago has left it: 2
		if st := f.stats(t); st.State != "closed" {
			t.Fatalf("stats %+v", st)
		}
		f.failN(t, 1)
		if v := f.check(t); v.Allowed || v.State != "open" {
			t.Fatalf("%+v", v)
		}
	})
	t.Run("advanced optimization off disables it", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.failN(t, 3)
		f.apply(t, testConfig(func(c *conf.Config) { c.EnableAdvancedOptimization = false }))
		if s := f.status(t); s.State != messages.StateDisabled {
			t.Fatalf("status %+v", s)
		}
		f.failN(t, 10) // every call allowed, failures not counted
		if st := f.stats(t); st.Enabled || st.State != "closed" || st.ConsecutiveFailures != 0 {
			t.Fatalf("stats %+v", st)
		}
		f.apply(t, testConfig(nil))
		if s := f.status(t); s.State != messages.StateHealthy {
			t.Fatalf("back on: %+v", s)
		}
	})
}

// Workers do not report successes through a closed breaker with no
// failure to reset (Board.Quiet): the board counts them, and the breaker
// reads the count before each result it records.
func TestQuietSuccessesAreCalls(t *testing.T) {
	f := start(t, testConfig(nil)) // threshold 3 within 10 s, rate 0.5
	quiet := func(n int) {
		t.Helper()
		f.stats(t) // the board shows what was reported before
		e, _ := f.board.Get("sim", endpoint)
		for range n {
			if !f.board.Quiet("sim", endpoint, e.Generation) {
				t.Fatalf("entry %+v: a success not quiet", e)
			}
		}
	}
	f.failN(t, 1)
	if f.board.Quiet("sim", endpoint, 0) {
		t.Fatal("a failure counted: the next success must be reported")
	}
	f.report(0, true, 0)
	quiet(10)
	f.failN(t, 2) // 3 failures in 14 calls, 2 in a row
	if st := f.stats(t); st.State != "closed" || st.ConsecutiveFailures != 2 {
		t.Fatalf("stats %+v: the quiet successes were not counted", st)
	}

	// They are counted when they happened, not when read: 10 s of quiet
	// successes leave most of them in the window.
	f.report(0, true, 0)
	for range 10 {
		f.clock.Advance(time.Second)
		quiet(10)
	}
	f.failN(t, 3) // 3 failures in 93 calls: the window, t0+1s on, holds 90 of the 100
	if st := f.stats(t); st.State != "closed" {
		t.Fatalf("stats %+v", st)
	}

	// Quiet successes counted while the breaker restarts are not lost.
	f.report(0, true, 0)
	quiet(100)
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	f.failN(t, 3) // 6 failures in 196 calls
	if st := f.stats(t); st.State != "closed" {
		t.Fatalf("after a restart: %+v", st)
	}
	f.clock.Advance(10 * time.Second)
	f.failN(t, 3) // the window has rolled past all of it: 3 of 3
	if st := f.stats(t); st.State != "open" {
		t.Fatalf("stats %+v", st)
	}
}

func TestRestartKeepsOpenState(t *testing.T) {
	f := start(t, testConfig(nil))
	f.failN(t, 3)
	f.clock.Advance(3 * time.Second)
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	v := f.check(t)
	if v.Allowed || v.State != "open" || v.RetryIn != 7*time.Second {
		t.Fatalf("after restart %+v", v)
	}
	actortest.Timers(t, f.clock, 7*time.Second) // the old incarnation's timer is gone, the new one set
}

// onBoard: after the breaker has processed what was sent to it, its board
// entry is state, gen, OpenUntil t0+until (until < 0: zero).
func (f *fixture) onBoard(t *testing.T, state State, gen uint64, until time.Duration) {
	t.Helper()
	f.stats(t) // a round trip: ticks and reports sent before are processed
	e, ok := f.board.Get("sim", endpoint)
	// Failures are checked where they matter (TestBoardCountsFailuresWhileClosed).
	want := Entry{Upstream: "sim", Endpoint: endpoint, Actor: "breaker/sim/0", State: state, Generation: gen, Failures: e.Failures}
	if until >= 0 {
		want.OpenUntil = t0.Add(until)
	}
	if !ok || !e.same(&want) {
		t.Fatalf("board entry %+v (%v), want %+v", e, ok, want)
	}
}

func TestBoardCountsFailuresWhileClosed(t *testing.T) {
	f := start(t, testConfig(nil)) // threshold 3
	failures := func() int {
		t.Helper()
		f.stats(t) // a round trip: the reports sent before are processed
		e, _ := f.board.Get("sim", endpoint)
		return e.Failures
	}
	f.failN(t, 2)
	if n := failures(); n != 2 {
		t.Fatalf("board shows %d failures, want 2", n)
	}
	f.system.Root.Send(f.pid, &messages.ReportResult{Generation: 0, Success: true})
	if n := failures(); n != 0 {
		t.Fatalf("after a success the board shows %d failures, want 0", n)
	}
	f.failN(t, 1) // 3 failures in 4 calls: open
	if n := failures(); n != 0 {
		t.Fatalf("open: the board shows %d failures, want 0 (they count only while closed)", n)
	}
	if e, _ := f.board.Get("sim", endpoint); e.State != Open {
		t.Fatalf("board entry %+v, want open", e)
	}
}

func TestBoardFollowsTransitions(t *testing.T) {
	f := start(t, testConfig(nil))
	f.onBoard(t, Closed, 0, -1) // set at start
	f.failN(t, 2)
	f.onBoard(t, Closed, 0, -1)
	f.failN(t, 1)
	f.onBoard(t, Open, 1, 10*s)
	if _, _, ok := f.board.Route(t0.Add(9*s), "sim", []string{endpoint}); ok {
		t.Fatal("the board routes to an open breaker before its timeout")
	}

	f.clock.Advance(10 * s) // the timer: half_open, no probe out
	f.onBoard(t, HalfOpen, 2, -1)
	if ep, probe, ok := f.board.Route(f.clock.Now(), "sim", []string{endpoint}); ep != endpoint || !probe || !ok {
		t.Fatalf("Route in half_open: %q probe %v ok %v", ep, probe, ok)
	}
	probe := f.check(t)
	if !probe.Allowed || probe.Generation != 2 {
		t.Fatalf("probe %+v", probe)
	}
	// The entry is set before the verdict is sent: whoever hears of the
	// probe (granted or refused) finds it taken on the board.
	if _, _, ok := f.board.Route(f.clock.Now(), "sim", []string{endpoint}); ok {
		t.Fatal("the board offers a second probe")
	}
	if v := f.check(t); v.Allowed {
		t.Fatalf("second probe granted %+v", v)
	}
	f.onBoard(t, HalfOpen, 2, 20*s) // the probe is out: others wait

	f.clock.Advance(10 * s) // the probe's caller never reported
	f.onBoard(t, HalfOpen, 3, -1)
	f.report(probe.Generation, true, 0) // its late answer is ignored
	f.onBoard(t, HalfOpen, 3, -1)
	again := f.check(t)
	if !again.Allowed || again.Generation != 3 {
		t.Fatalf("second probe %+v", again)
	}
	f.onBoard(t, HalfOpen, 3, 30*s)
	f.clock.Advance(s)
	f.report(again.Generation, false, 0) // reopens for another timeout
	f.onBoard(t, Open, 4, 31*s)
	if s := f.status(t); !strings.Contains(s.Detail, "probe failed") {
		t.Fatalf("status %+v", s)
	}

	f.clock.Advance(10 * s)
	f.onBoard(t, HalfOpen, 5, -1)
	last := f.check(t)
	f.system.Root.Send(f.pid, &messages.ReportResult{Generation: last.Generation, Neutral: true}) // a 429: slot freed
	f.onBoard(t, HalfOpen, 6, -1)
	last = f.check(t)
	f.report(last.Generation, true, 0)
	f.onBoard(t, Closed, 7, -1)
	if ep, probe, ok := f.board.Route(f.clock.Now(), "sim", []string{endpoint}); ep != endpoint || probe || !ok {
		t.Fatalf("Route after closing: %q probe %v ok %v", ep, probe, ok)
	}
}

func TestBoardAcrossRestartAndConfig(t *testing.T) {
	f := start(t, testConfig(nil))
	f.failN(t, 3)
	f.onBoard(t, Open, 1, 10*s)
	f.apply(t, testConfig(func(c *conf.Config) { c.ErrorRecovery.CircuitBreakerTimeout = 30 }))
	f.onBoard(t, Open, 1, 30*s) // a new timeout moves OpenUntil
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	f.onBoard(t, Open, 1, 30*s) // the restored state, set again at start
	f.apply(t, testConfig(func(c *conf.Config) { c.EnableAdvancedOptimization = false }))
	f.onBoard(t, Closed, 2, -1) // off: every call goes
}

func TestCheckBreakerReplyTo(t *testing.T) {
	f := start(t, testConfig(nil))
	to, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.CheckBreaker{ID: 42, ReplyTo: to})
	if v := actortest.Recv[*messages.BreakerVerdict](t, ch); v.ID != 42 || !v.Allowed || v.State != "closed" {
		t.Fatalf("verdict %+v", v)
	}
	if v := f.check(t); v.ID != 0 || !v.Allowed {
		t.Fatalf("verdict to the sender %+v", v)
	}
}

// BenchmarkCheckBreaker is the exchange a worker would make per call
// without the board (a RequestFuture round trip), for comparison with
// BenchmarkBoardRoute.
func BenchmarkCheckBreaker(b *testing.B) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	b.Cleanup(system.Shutdown)
	pid := system.Root.Spawn(Props(Deps{Name: "breaker/sim/0", Upstream: "sim", Endpoint: endpoint, Log: zerolog.Nop()}))
	b.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	b.ReportAllocs()
	for b.Loop() {
		res, err := system.Root.RequestFuture(pid, &messages.CheckBreaker{}, actortest.Wait).Result()
		if err != nil || !res.(*messages.BreakerVerdict).Allowed {
			b.Fatal(res, err)
		}
	}
}
