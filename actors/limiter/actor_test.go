package limiter

import (
	"bytes"
	"fmt"
	"slices"
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

type fixture struct {
	name   string // limiter/UPSTREAM
	system *actor.ActorSystem
	pid    *actor.PID
	live   *conf.Live
	clock  *clock.Fake
	set    *metrics.Set
	logs   *actortest.SyncBuffer
	probe  *actor.PID
	ch     chan any
}

// testConfig: 10/s within [1, 100], factor 2, depth 2.
func testConfig(mut func(*conf.Config)) *conf.Config {
	cfg := conf.Default()
	cfg.RateLimit = conf.RateLimit{InitialRate: 10, MinRate: 1, MaxRate: 100, AdaptationFactor: 2, WindowSize: 60, BurstAllowance: 2}
	if mut != nil {
		mut(cfg)
	}
	return cfg
}

func start(t *testing.T, cfg *conf.Config) *fixture {
	t.Helper()
	return startFor(t, cfg, "sim", nil)
}

// startFor starts limiter/UPSTREAM, with r as its reservoir when not nil.
func startFor(t *testing.T, cfg *conf.Config, upstream string, r *Reservoir) *fixture {
	t.Helper()
	f := &fixture{
		name:   "limiter/" + upstream,
		system: actortest.NewSystem(t),
		live:   conf.NewLive(cfg),
		clock:  clock.NewFake(t0),
		set:    metrics.NewSet(),
		logs:   &actortest.SyncBuffer{},
	}
	f.pid = actortest.Spawn(t, f.system, actortest.Panicky(Props(Deps{
		Name: f.name, Upstream: upstream, Live: f.live, Clock: f.clock,
		Log: zerolog.New(f.logs), Metrics: f.set, Reservoir: r,
	})))
	f.probe, f.ch = actortest.Probe(t, f.system)
	return f
}

func (f *fixture) stats(t *testing.T) *messages.LimiterStats {
	return actortest.Stats[*messages.LimiterStats](t, f.system, f.pid)
}

func (f *fixture) status(t *testing.T) *messages.StatusReport {
	return actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{})
}

func (f *fixture) acquire(id uint64, priority int) {
	f.system.Root.Send(f.pid, &messages.AcquireToken{ID: id, Priority: priority, ReplyTo: f.probe})
}

func (f *fixture) apply(t *testing.T, cfg *conf.Config) {
	t.Helper()
	f.live.Store(cfg)
	if r := actortest.Ask[*messages.ConfigApplied](t, f.system, f.pid, &messages.ApplyConfig{Config: cfg}); r.Err != "" || r.Actor != f.name {
		t.Fatalf("ConfigApplied %+v", r)
	}
}

// granted returns the ids granted so far (in order).
func (f *fixture) granted(t *testing.T) []uint64 {
	t.Helper()
	f.stats(t) // everything sent before is processed
	var ids []uint64
	for _, m := range actortest.Drain(t, f.system, f.probe, f.ch) {
		g, ok := m.(*messages.TokenGranted)
		if !ok {
			t.Fatalf("probe got %T", m)
		}
		ids = append(ids, g.ID)
	}
	return ids
}

func TestAdminMessages(t *testing.T) {
	f := start(t, testConfig(nil))
	if p := actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{Seq: 3}); p.Seq != 3 || p.Actor != "limiter/sim" {
		t.Fatalf("pong %+v", p)
	}
	if s := f.status(t); s.State != messages.StateHealthy || s.Actor != "limiter/sim" {
		t.Fatalf("status %+v", s)
	}
	st := f.stats(t)
	if st.Upstream != "sim" || !st.Enabled || st.CurrentRate != 10 || st.MinRate != 1 || st.MaxRate != 100 || st.Burst != 2 || st.Tokens != 2 {
		t.Fatalf("stats %+v", st)
	}
	f.system.Root.Send(f.pid, 42) // unknown: logged and ignored
	actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{})
}

func TestWaitersWokenByTimer(t *testing.T) {
	f := start(t, testConfig(nil))
	for id := uint64(1); id <= 4; id++ {
		f.acquire(id, 1)
	}
	if got := f.granted(t); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("granted %v at once, want the burst [1 2]", got)
	}
	if st := f.stats(t); st.Waiting != 2 || st.Granted != 2 || st.Tokens != 0 {
		t.Fatalf("stats %+v", st)
	}
	actortest.Timers(t, f.clock, 100*time.Millisecond) // 1 token at 10/s
	f.clock.Advance(100 * time.Millisecond)
	if got := actortest.Recv[*messages.TokenGranted](t, f.ch); got.ID != 3 || got.Count != 1 {
		t.Fatalf("granted %+v, want 3", got)
	}
	actortest.AwaitTimer(t, f.clock)
	f.clock.Advance(100 * time.Millisecond)
	if got := actortest.Recv[*messages.TokenGranted](t, f.ch); got.ID != 4 {
		t.Fatalf("granted %+v, want 4", got)
	}
	if st := f.stats(t); st.Waiting != 0 || st.Granted != 4 {
		t.Fatalf("stats %+v", st)
	}
	actortest.Timers(t, f.clock) // none left with nobody waiting
}

func TestPriorityThenArrival(t *testing.T) {
	f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 1 }))
	f.acquire(100, 0) // takes the only token
	f.acquire(1, 2)
	f.acquire(2, 1)
	f.acquire(3, 0)
	f.acquire(4, 1)
	f.acquire(5, 1)
	f.system.Root.Send(f.pid, &messages.CancelToken{ID: 5})
	if got := f.granted(t); !slices.Equal(got, []uint64{100}) {
		t.Fatalf("granted %v", got)
	}
	var order []uint64
	for range 4 {
		actortest.AwaitTimer(t, f.clock)
		f.clock.Advance(100 * time.Millisecond)
		order = append(order, actortest.Recv[*messages.TokenGranted](t, f.ch).ID)
	}
	if !slices.Equal(order, []uint64{3, 2, 4, 1}) {
		t.Fatalf("grant order %v, want [3 2 4 1]", order)
	}
}

func TestRequestWithoutReplyTo(t *testing.T) {
	f := start(t, testConfig(nil))
	g := actortest.Ask[*messages.TokenGranted](t, f.system, f.pid, &messages.AcquireToken{ID: 9, Count: 2})
	if g.ID != 9 || g.Count != 2 {
		t.Fatalf("granted %+v", g)
	}
}

func TestOutcomesAdaptTheRate(t *testing.T) {
	f := start(t, testConfig(nil))
	f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 429})
	f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 429}) // within the cooldown: one signal
	if st := f.stats(t); st.CurrentRate != 5 || st.Throttles != 2 || st.Decreases != 1 {
		t.Fatalf("stats %+v", st)
	}
	if n := f.logs.Count("rate adjusted"); n != 1 {
		t.Fatalf("%d 'rate adjusted' lines, want 1", n)
	}
	var prom bytes.Buffer
	f.set.WritePrometheus(&prom)
	if !strings.Contains(prom.String(), `deer_ratelimit_rate{upstream="sim"} 5`) {
		t.Fatalf("metrics:\n%s", prom.String())
	}

	// Demand beyond the rate and successes past the window raise it again.
	f.clock.Advance(61 * time.Second)
	for id := uint64(1); id <= 3; id++ {
		f.acquire(id, 1)
	}
	f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 200})
	if st := f.stats(t); st.CurrentRate != 10 || st.Increases != 1 {
		t.Fatalf("after demand: %+v", st)
	}
}

func TestRetryAfterPausesGrants(t *testing.T) {
	f := start(t, testConfig(nil))
	f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 503, RetryAfter: 2 * time.Second})
	f.acquire(1, 0)
	if got := f.granted(t); len(got) != 0 {
		t.Fatalf("granted %v during a Retry-After pause", got)
	}
	if s := f.status(t); s.State != messages.StateDegraded || !strings.Contains(s.Detail, "Retry-After") {
		t.Fatalf("status %+v", s)
	}
	actortest.Timers(t, f.clock, 2*time.Second)
	f.clock.Advance(2 * time.Second)
	if got := actortest.Recv[*messages.TokenGranted](t, f.ch); got.ID != 1 {
		t.Fatalf("granted %+v", got)
	}
	if s := f.status(t); s.State != messages.StateHealthy {
		t.Fatalf("status after the pause %+v", s)
	}
}

func TestApplyConfigLive(t *testing.T) {
	t.Run("initial_rate resets the current rate", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 429}) // learned 5/s
		f.apply(t, testConfig(func(c *conf.Config) { c.RateLimit.InitialRate = 20 }))
		if st := f.stats(t); st.CurrentRate != 20 {
			t.Fatalf("current_rate %v, want 20\n%s", st.CurrentRate, f.logs.String())
		}
		var prom bytes.Buffer
		f.set.WritePrometheus(&prom)
		if !strings.Contains(prom.String(), `deer_ratelimit_rate{upstream="sim"} 20`) {
			t.Fatalf("metrics:\n%s", prom.String())
		}
	})
	t.Run("min_rate and max_rate re-clamp", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.apply(t, testConfig(func(c *conf.Config) { c.RateLimit.MaxRate = 4; c.RateLimit.MinRate = 2 }))
		if st := f.stats(t); st.CurrentRate != 4 || st.MaxRate != 4 || st.MinRate != 2 {
			t.Fatalf("stats %+v", st)
		}
		f.apply(t, testConfig(func(c *conf.Config) { c.RateLimit.MaxRate = 50; c.RateLimit.MinRate = 8 }))
		if st := f.stats(t); st.CurrentRate != 8 {
			t.Fatalf("current_rate %v, want 8 (raised to the new min)", st.CurrentRate)
		}
	})
	t.Run("burst_allowance resizes the bucket", func(t *testing.T) {
		f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 5 }))
		f.apply(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 3 }))
		if st := f.stats(t); st.Burst != 3 || st.Tokens != 3 {
			t.Fatalf("stats %+v", st)
		}
		for id := uint64(1); id <= 4; id++ {
			f.acquire(id, 1)
		}
		if got := f.granted(t); len(got) != 3 {
			t.Fatalf("granted %v at once from a depth-3 bucket", got)
		}
	})
	t.Run("adaptation_factor and window_size", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.apply(t, testConfig(func(c *conf.Config) { c.RateLimit.AdaptationFactor = 4; c.RateLimit.WindowSize = 10 }))
		f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 429})
		if st := f.stats(t); st.CurrentRate != 2.5 {
			t.Fatalf("current_rate %v, want 10/4", st.CurrentRate)
		}
		// A 10s window: demand and success 10s after the throttle raise it.
		f.clock.Advance(10 * time.Second)
		for id := uint64(1); id <= 3; id++ {
			f.acquire(id, 1)
		}
		f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 200})
		if st := f.stats(t); st.CurrentRate != 10 {
			t.Fatalf("current_rate %v, want 2.5*4", st.CurrentRate)
		}
	})
	t.Run("advanced optimization off disables the limiter", func(t *testing.T) {
		f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 1 }))
		f.acquire(1, 0)
		f.acquire(2, 0)
		if got := f.granted(t); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("granted %v", got)
		}
		off := testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 1; c.EnableAdvancedOptimization = false })
		f.apply(t, off)
		for id := uint64(3); id <= 6; id++ {
			f.acquire(id, 0)
		}
		if got := f.granted(t); !slices.Equal(got, []uint64{2, 3, 4, 5, 6}) {
			t.Fatalf("granted %v with the limiter off", got)
		}
		if s := f.status(t); s.State != messages.StateDisabled {
			t.Fatalf("status %+v", s)
		}
		if st := f.stats(t); st.Enabled {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRestartKeepsRateAndWaiters(t *testing.T) {
	f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 1 }))
	f.system.Root.Send(f.pid, &messages.ReportOutcome{Status: 429}) // 5/s
	f.acquire(1, 0)
	f.acquire(2, 0)
	if got := f.granted(t); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("granted %v", got)
	}
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	st := f.stats(t)
	if st.CurrentRate != 5 || st.Waiting != 1 || st.Granted != 1 {
		t.Fatalf("after restart %+v", st)
	}
	// The restarted limiter re-armed the wake-up for its waiter (200ms at 5/s);
	// the old incarnation's timer was stopped.
	actortest.Timers(t, f.clock, 200*time.Millisecond)
	f.clock.Advance(200 * time.Millisecond)
	if got := actortest.Recv[*messages.TokenGranted](t, f.ch); got.ID != 2 {
		t.Fatalf("granted %+v", got)
	}
}

func (f *fixture) retry(id uint64) {
	f.system.Root.Send(f.pid, &messages.AcquireToken{ID: id, ReplyTo: f.probe, Retry: true})
}

func (f *fixture) budget(t *testing.T) *messages.RetryBudgetReport {
	t.Helper()
	return actortest.Ask[*messages.RetryBudgetReport](t, f.system, f.pid, &messages.RetryBudgetQuery{})
}

// answers returns what the probe got so far, as "g<id>" for a grant and
// "r<id>:<reason>" for a refusal, in order.
func (f *fixture) answers(t *testing.T) []string {
	t.Helper()
	f.stats(t) // everything sent before is processed
	var out []string
	for _, m := range actortest.Drain(t, f.system, f.probe, f.ch) {
		switch m := m.(type) {
		case *messages.TokenGranted:
			out = append(out, fmt.Sprintf("g%d", m.ID))
		case *messages.RetryRefused:
			out = append(out, fmt.Sprintf("r%d:%s", m.ID, m.Reason))
		default:
			t.Fatalf("probe got %T", m)
		}
	}
	return out
}

func TestRetryBudget(t *testing.T) {
	// A deep bucket, so that only the budget says no.
	f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 50; c.RateLimit.InitialRate = 100 }))
	for id := uint64(1); id <= 11; id++ {
		f.retry(id)
	}
	got := f.answers(t)
	want := []string{"g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10", "r11:retry budget exhausted"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("answers %v, want the floor of 10 retries, then a refusal", got)
	}
	// Five first attempts buy one more retry (20%).
	for id := uint64(21); id <= 25; id++ {
		f.acquire(id, 1)
	}
	f.retry(26)
	f.retry(27)
	if got := strings.Join(f.answers(t), " "); got != "g21 g22 g23 g24 g25 g26 r27:retry budget exhausted" {
		t.Fatalf("answers %v", got)
	}
	if b := f.budget(t); *b != (messages.RetryBudgetReport{Upstream: "sim", Window: 60, Requests: 5, Retries: 11,
		Available: 0, RetriesTotal: 11, RetriesRefused: 2}) {
		t.Fatalf("budget %+v", b)
	}
	var prom bytes.Buffer
	f.set.WritePrometheus(&prom)
	for _, line := range []string{`deer_retries_total{upstream="sim"} 11`, `deer_retry_budget_refused_total{upstream="sim"} 2`} {
		if !strings.Contains(prom.String(), line) {
			t.Fatalf("no %q in metrics:\n%s", line, prom.String())
		}
	}
	// A window later the spent retries have left it.
	f.clock.Advance(60 * time.Second)
	f.retry(30)
	if got := strings.Join(f.answers(t), " "); got != "g30" {
		t.Fatalf("answers %v a window later", got)
	}
	if b := f.budget(t); b.Requests != 0 || b.Retries != 1 || b.Available != 9 {
		t.Fatalf("budget a window later %+v", b)
	}
}

func TestRetryWaitsForTokensLikeARequest(t *testing.T) {
	f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 1 }))
	f.acquire(1, 0)
	f.retry(2)
	if got := strings.Join(f.answers(t), " "); got != "g1" {
		t.Fatalf("answers %v", got)
	}
	actortest.AwaitTimer(t, f.clock)
	f.clock.Advance(100 * time.Millisecond)
	if got := actortest.Recv[*messages.TokenGranted](t, f.ch); got.ID != 2 {
		t.Fatalf("granted %+v", got)
	}
	// A cancelled retry keeps its share of the budget spent.
	f.acquire(3, 0)
	f.retry(4)
	f.system.Root.Send(f.pid, &messages.CancelToken{ID: 4})
	if b := f.budget(t); b.Retries != 2 || b.RetriesTotal != 2 || b.Requests != 2 {
		t.Fatalf("budget %+v", b)
	}
}

func TestRetriesRefusedWithRecoveryOff(t *testing.T) {
	f := start(t, testConfig(func(c *conf.Config) { c.EnableAdvancedOptimization = false }))
	f.retry(1)
	f.acquire(2, 0)
	f.retry(3)
	if got := strings.Join(f.answers(t), " "); got != "r1:error recovery disabled g2 r3:error recovery disabled" {
		t.Fatalf("answers %v", got)
	}
	if b := f.budget(t); b.RetriesRefused != 0 || b.RetriesTotal != 0 || b.Available != 0 || b.Requests != 1 {
		t.Fatalf("budget %+v", b)
	}
	// Switched on live: retries go again, within the budget.
	f.apply(t, testConfig(nil))
	f.retry(4)
	if got := strings.Join(f.answers(t), " "); got != "g4" {
		t.Fatalf("answers %v after switching on", got)
	}
}

func TestRestartKeepsRetryBudget(t *testing.T) {
	f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 50; c.RateLimit.InitialRate = 100 }))
	for id := uint64(1); id <= 11; id++ {
		f.retry(id)
	}
	f.answers(t)
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	if b := f.budget(t); b.Retries != 10 || b.Available != 0 || b.RetriesTotal != 10 || b.RetriesRefused != 1 {
		t.Fatalf("budget after restart %+v", b)
	}
	f.retry(12)
	if got := strings.Join(f.answers(t), " "); got != "r12:retry budget exhausted" {
		t.Fatalf("answers after restart %v", got)
	}
}

func TestWindowSizeResizesTheRetryBudget(t *testing.T) {
	f := start(t, testConfig(func(c *conf.Config) { c.RateLimit.BurstAllowance = 50; c.RateLimit.InitialRate = 100 }))
	for id := uint64(1); id <= 10; id++ {
		f.retry(id)
	}
	f.answers(t)
	f.apply(t, testConfig(func(c *conf.Config) {
		c.RateLimit.BurstAllowance = 50
		c.RateLimit.InitialRate = 100
		c.RateLimit.WindowSize = 10
	}))
	if b := f.budget(t); b.Window != 10 || b.Retries != 10 || b.Available != 0 {
		t.Fatalf("budget %+v", b)
	}
	f.clock.Advance(10 * time.Second)
	if b := f.budget(t); b.Retries != 0 || b.Available != 10 {
		t.Fatalf("budget 10s later %+v", b)
	}
}
