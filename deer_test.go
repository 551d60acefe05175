package deer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testConfig is the built-in defaults with the L3 store in a temporary
// directory and no upstreams, so the only timers on a fake clock are the
// periodic ones (router health check, metrics export, cache cleanup), all
// far longer than the restart backoff the supervision tests use.
func testConfig(t testing.TB) *conf.Config {
	t.Helper()
	cfg := conf.Default()
	cfg.Cache.L3Path = t.TempDir()
	return cfg
}

// start runs a runtime on cfg, quiet, and stops it when the test ends.
func start(t testing.TB, cfg *conf.Config, opts ...deer.Option) *deer.Runtime {
	t.Helper()
	opts = append([]deer.Option{deer.WithLogger(zerolog.New(io.Discard), nil)}, opts...)
	rt, err := deer.Start(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return rt
}

func entry(t testing.TB, rt *deer.Runtime, name string) supervisor.Entry {
	t.Helper()
	e, ok := rt.Registry().Get(name)
	if !ok {
		t.Fatalf("%s is not in the registry", name)
	}
	return e
}

func TestStartRejectsInvalidConfig(t *testing.T) {
	cases := []struct {
		name   string
		change func(*conf.Config)
		key    string
	}{
		{"out of range", func(c *conf.Config) { c.ParallelExecution.MaxWorkers = 0 }, "parallel_execution.max_workers"},
		{"cross-field", func(c *conf.Config) { c.RateLimit.MinRate = 500 }, "rate_limit.min_rate"},
		{"bad enum", func(c *conf.Config) { c.Cache.EvictionPolicy = "random" }, "cache.eviction_policy"},
		{"redaction placeholder as token", func(c *conf.Config) { c.Server.AdminToken = conf.RedactedValue }, "server.admin_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.change(cfg)
			rt, err := deer.Start(context.Background(), cfg, deer.WithLogger(zerolog.New(io.Discard), nil))
			if err == nil {
				_ = rt.Stop(context.Background())
				t.Fatal("Start accepted an invalid configuration")
			}
			if rt != nil {
				t.Errorf("Start returned a runtime along with the error %v", err)
			}
			var fe conf.FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not conf.FieldErrors", err, err)
			}
			if fe[0].Key != tc.key {
				t.Errorf("key = %q, want %q (%v)", fe[0].Key, tc.key, err)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("message %q does not name %s", err, tc.key)
			}
		})
	}
}

// TestStartStopLeavesNothingRunning checks right here, not only at the end of
// the package, that a stopped runtime leaves no goroutine behind, and that
// Stop may be called again.
func TestStartStopLeavesNothingRunning(t *testing.T) {
	before := goleak.IgnoreCurrent()
	cfg := testConfig(t)
	rt, err := deer.Start(context.Background(), cfg, deer.WithLogger(zerolog.New(io.Discard), nil))
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := rt.Ready(context.Background()); !ok {
		t.Errorf("not ready after Start: %s", why)
	}
	if err := rt.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := rt.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if ok, _ := rt.Ready(context.Background()); ok {
		t.Error("a stopped runtime reports ready")
	}
	goleak.VerifyNone(t, append(leaktest.Options(), before)...)
}

// crasher is a test actor run in the observability group through
// deer.WithActor. It panics on *boom while armed (disarming itself, so the
// redelivered message succeeds) and in Started while poison is set. It
// answers the admin queries every deer actor answers.
type crasher struct{ p *probe }

// probe outlives the crasher's incarnations.
type probe struct {
	poison     atomic.Bool
	starts     atomic.Int32 // incarnations that started without panicking
	deliveries atomic.Int32 // *boom messages received
}

type boom struct{ armed atomic.Bool }

func (c *crasher) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if c.p.poison.Load() {
			panic("poisoned start")
		}
		c.p.starts.Add(1)
	case *boom:
		c.p.deliveries.Add(1)
		if m.armed.CompareAndSwap(true, false) || c.p.poison.Load() {
			panic("boom")
		}
	case *messages.StatusQuery:
		ctx.Respond(&messages.StatusReport{Actor: "crasher", State: messages.StateHealthy})
	case *messages.StatsQuery:
		ctx.Respond(&messages.StatsReport{Actor: "crasher"})
	case *messages.ApplyConfig:
		ctx.Respond(&messages.ConfigApplied{Actor: "crasher"})
	case *messages.Ping:
		ctx.Respond(&messages.Pong{Actor: "crasher", Seq: m.Seq})
	}
}

func crasherProps(p *probe) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &crasher{p: p} })
}

// backoff is the one restart delay of testPolicy: no jitter, no growth, so
// a pending timer of at most this long is a restart (the periodic timers of
// testConfig are 30 s and more).
const backoff = time.Second

func testPolicy(maxRestarts int) supervisor.Policy {
	return supervisor.Policy{
		MinBackoff: backoff, MaxBackoff: backoff, Multiplier: 1, Jitter: 0,
		MaxRestarts: maxRestarts, Window: time.Hour, MaxRedeliveries: 3,
	}
}

// advanceToRestart waits until a restart is scheduled on clk, then moves
// the clock past its backoff so that it fires.
func advanceToRestart(t testing.TB, clk *clock.Fake) {
	t.Helper()
	actortest.Eventually(t, "a restart to be scheduled", func() bool {
		for _, d := range clk.Pending() {
			if d <= backoff {
				return true
			}
		}
		return false
	})
	clk.Advance(backoff)
}

func ping(rt *deer.Runtime, name string) error {
	pid, ok := rt.Registry().PID(name)
	if !ok {
		return fmt.Errorf("%s not registered", name)
	}
	res, err := rt.System().Root.RequestFuture(pid, &messages.Ping{Seq: 7}, time.Second).Result()
	if err != nil {
		return err
	}
	if pong, ok := res.(*messages.Pong); !ok || pong.Seq != 7 {
		return fmt.Errorf("%s answered %#v", name, res)
	}
	return nil
}

func prometheusText(rt *deer.Runtime) string {
	var buf bytes.Buffer
	rt.MetricsSet().WritePrometheus(&buf)
	return buf.String()
}

func TestCrashedActorIsRestartedAfterBackoff(t *testing.T) {
	clk := clock.NewFake(t0)
	p := &probe{}
	rt := start(t, testConfig(t), deer.WithClock(clk), deer.WithSupervisionPolicy(testPolicy(10)),
		deer.WithActor("crasher", crasherProps(p)))
	ctx := context.Background()

	if e := entry(t, rt, "crasher"); e.Group != "observability" || e.State != supervisor.Running {
		t.Fatalf("crasher entry = %+v, want running in observability", e)
	}
	pid, _ := rt.Registry().PID("crasher")
	b := &boom{}
	b.armed.Store(true)
	rt.System().Root.Send(pid, b)

	// The restart waits on the fake clock: until it moves, the actor is
	// restarting, and /health says so.
	actortest.Eventually(t, "crasher to be restarting", func() bool { return entry(t, rt, "crasher").State == supervisor.Restarting })
	h := rt.Health(ctx)
	if got := h.Actors["crasher"]; got.State != "restarting" || got.Restarts != 1 || !strings.Contains(got.Detail, "boom") {
		t.Errorf("health of crasher while restarting = %+v", got)
	}
	if h.Status != "degraded" {
		t.Errorf("status while an actor restarts = %q, want degraded", h.Status)
	}
	if p.deliveries.Load() != 1 {
		t.Errorf("deliveries before the restart = %d, want 1", p.deliveries.Load())
	}

	advanceToRestart(t, clk)
	actortest.Eventually(t, "crasher to run again", func() bool { return entry(t, rt, "crasher").State == supervisor.Running })
	// The message it crashed on is delivered again to the new incarnation.
	actortest.Eventually(t, "the crash message to be redelivered", func() bool { return p.deliveries.Load() == 2 })
	if err := ping(rt, "crasher"); err != nil {
		t.Fatalf("crasher after restart: %v", err)
	}
	if n := p.starts.Load(); n != 2 {
		t.Errorf("incarnations started = %d, want 2", n)
	}
	h = rt.Health(ctx)
	if got := h.Actors["crasher"]; got.State != "healthy" || got.Restarts != 1 {
		t.Errorf("health of crasher after restart = %+v, want healthy with 1 restart", got)
	}
	if h.Status != "healthy" {
		t.Errorf("status after the restart = %q, want healthy", h.Status)
	}
	if r := rt.Metrics(ctx).Actors.Restarts["crasher"]; r != 1 {
		t.Errorf("/metrics actors.restarts.crasher = %d, want 1", r)
	}
	if text := prometheusText(rt); !strings.Contains(text, `deer_actor_restarts_total{actor="crasher"} 1`) {
		t.Errorf("Prometheus text lacks the restart counter:\n%s", text)
	}
	// Nothing else was touched: its group was not restarted.
	if r := entry(t, rt, "observability").Restarts; r != 0 {
		t.Errorf("observability restarts = %d, want 0", r)
	}
}

// TestRestartIntensityEscalatesToTheGroup makes an actor fail more often than
// the restart intensity allows: its supervisor (the observability group)
// gives up on it and escalates, the root restarts the group, and the group
// spawns all its children again, metrics included.
func TestRestartIntensityEscalatesToTheGroup(t *testing.T) {
	const maxRestarts = 2
	clk := clock.NewFake(t0)
	p := &probe{}
	rt := start(t, testConfig(t), deer.WithClock(clk), deer.WithSupervisionPolicy(testPolicy(maxRestarts)),
		deer.WithActor("crasher", crasherProps(p)))
	ctx := context.Background()
	if err := ping(rt, "metrics"); err != nil {
		t.Fatalf("metrics before: %v", err)
	}

	// From now on every incarnation panics as it starts.
	p.poison.Store(true)
	pid, _ := rt.Registry().PID("crasher")
	rt.System().Root.Send(pid, &boom{})
	// Failure 1 (the message), then failures 2 and 3 as each restart's
	// Started panics: the third is over the limit of 2 and escalates.
	for i := 0; i < maxRestarts; i++ {
		advanceToRestart(t, clk)
	}
	actortest.Eventually(t, "the group to be restarting", func() bool {
		return entry(t, rt, "observability").State == supervisor.Restarting
	})
	if e := entry(t, rt, "observability"); e.Restarts != 1 || !strings.Contains(e.LastFailure, "crasher failed") {
		t.Errorf("observability entry = %+v, want 1 restart for crasher's escalation", e)
	}
	if e := entry(t, rt, "crasher"); e.Restarts != maxRestarts || e.State != supervisor.Restarting {
		t.Errorf("crasher entry = %+v, want %d restarts, restarting", e, maxRestarts)
	}
	text := prometheusText(rt)
	for _, want := range []string{
		`deer_actor_escalations_total{actor="crasher"} 1`,
		fmt.Sprintf(`deer_actor_restarts_total{actor="crasher"} %d`, maxRestarts),
		`deer_actor_restarts_total{actor="observability"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Prometheus text lacks %s", want)
		}
	}
	if h := rt.Health(ctx); h.Status == "healthy" {
		t.Errorf("status while a group restarts = healthy, want it to say otherwise: %+v", h.Actors["observability"])
	}

	// The fault is gone; the root restarts the group after its backoff.
	p.poison.Store(false)
	starts := p.starts.Load()
	advanceToRestart(t, clk)
	for _, name := range []string{"observability", "metrics", "crasher"} {
		actortest.Eventually(t, name+" to run again", func() bool { return entry(t, rt, name).State == supervisor.Running })
	}
	// The group spawned its children afresh: a new crasher started, and the
	// metrics actor is registered and answers.
	actortest.Eventually(t, "a new crasher incarnation", func() bool { return p.starts.Load() == starts+1 })
	for _, name := range []string{"metrics", "crasher", "observability"} {
		if err := ping(rt, name); err != nil {
			t.Errorf("%s after the group restart: %v", name, err)
		}
	}
	if _, err := rt.History(ctx); err != nil {
		t.Errorf("metrics history after the group restart: %v", err)
	}
	actortest.Eventually(t, "health to be healthy again", func() bool { return rt.Health(ctx).Status == "healthy" })
	h := rt.Health(ctx)
	if got := h.Actors["observability"].Restarts; got != 1 {
		t.Errorf("health: observability restarts = %d, want 1", got)
	}
	if got := h.Actors["crasher"].Restarts; got != maxRestarts {
		t.Errorf("health: crasher restarts = %d, want %d", got, maxRestarts)
	}
	// The other groups were not touched.
	for _, name := range []string{"executor", "cache", "upstreams", "router", "cache/l1"} {
		if r := entry(t, rt, name).Restarts; r != 0 {
			t.Errorf("%s restarts = %d, want 0", name, r)
		}
	}
}

func TestUpdateAndResetConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.BatchProcessing.BatchSize = 12 // the startup value differs from the built-in default
	rt := start(t, cfg)
	ctx := context.Background()

	next, err := rt.UpdateConfig(ctx, []byte(`{"batch_processing": {"batch_size": 15}, "rate_limit": {"initial_rate": 20}, "debug_mode": true}`))
	if err != nil && !errors.Is(err, deer.ErrNotApplied) { // late acks on a loaded machine still apply
		t.Fatalf("UpdateConfig: %v", err)
	}
	if next.BatchProcessing.BatchSize != 15 || next.RateLimit.InitialRate != 20 || !next.DebugMode {
		t.Errorf("returned configuration does not carry the patch: %+v", next)
	}
	if rt.Config() != next {
		t.Error("rt.Config() is not the configuration UpdateConfig returned")
	}
	if rt.StartupConfig().BatchProcessing.BatchSize != 12 {
		t.Errorf("the startup configuration changed: batch_size = %d", rt.StartupConfig().BatchProcessing.BatchSize)
	}
	if h := rt.Health(ctx); !h.Configuration.DebugMode {
		t.Error("/health does not show debug_mode switched on")
	}

	// An invalid patch changes nothing, and says which key is at fault.
	before := rt.Config()
	snapshot := before.Clone()
	for _, tc := range []struct{ patch, key string }{
		{`{"rate_limit": {"min_rate": 500}}`, "rate_limit.min_rate"},
		{`{"batch_processing": {"batch_size": 16}, "cache": {"l1_size": -1}}`, "cache.l1_size"},
		{`{"parallel_execution": {"max_workers": "five"}}`, "parallel_execution.max_workers"},
		{`{"batch_processing": {"batch_sizee": 15}}`, "batch_processing.batch_sizee"},
	} {
		got, err := rt.UpdateConfig(ctx, []byte(tc.patch))
		var fe conf.FieldErrors
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v is not conf.FieldErrors", tc.patch, err)
			continue
		}
		if fe[0].Key != tc.key {
			t.Errorf("%s: key = %q, want %q", tc.patch, fe[0].Key, tc.key)
		}
		if got != nil {
			t.Errorf("%s: returned a configuration along with the error", tc.patch)
		}
	}
	if _, err := rt.UpdateConfig(ctx, []byte(`{"batch_processing": `)); err == nil {
		t.Error("a malformed patch was accepted")
	}
	if rt.Config() != before || !reflect.DeepEqual(rt.Config(), snapshot) {
		t.Errorf("refused patches changed the configuration in force:\n%+v\nwant\n%+v", rt.Config(), snapshot)
	}

	// Reset returns to the startup configuration ...
	reset, err := rt.ResetConfig(ctx, false)
	if err != nil && !errors.Is(err, deer.ErrNotApplied) {
		t.Fatalf("ResetConfig: %v", err)
	}
	if !reflect.DeepEqual(reset, cfg) || !reflect.DeepEqual(rt.Config(), cfg) {
		t.Errorf("after reset the configuration is\n%+v\nwant the startup one\n%+v", rt.Config(), cfg)
	}
	if rt.Health(ctx).Configuration.DebugMode {
		t.Error("debug_mode still on after reset")
	}
	// ... or to the built-in defaults, keeping what needs a restart.
	builtin, err := rt.ResetConfig(ctx, true)
	if err != nil && !errors.Is(err, deer.ErrNotApplied) {
		t.Fatalf("ResetConfig(builtin): %v", err)
	}
	if builtin.BatchProcessing.BatchSize != conf.Default().BatchProcessing.BatchSize {
		t.Errorf("builtin reset batch_size = %d, want the default %d", builtin.BatchProcessing.BatchSize, conf.Default().BatchProcessing.BatchSize)
	}
	if builtin.Cache.L3Path != cfg.Cache.L3Path {
		t.Errorf("builtin reset moved the L3 store to %q", builtin.Cache.L3Path)
	}
	if rt.Config() != builtin {
		t.Error("rt.Config() is not the configuration ResetConfig returned")
	}
}

// TestUpdateConfigResizesWorkers checks that a new max_workers reaches the
// router: /metrics counts the workers it has, and the registry holds them.
func TestUpdateConfigResizesWorkers(t *testing.T) {
	rt := start(t, testConfig(t))
	ctx := context.Background()
	workers := func() int {
		n := 0
		for _, e := range rt.Registry().Entries() {
			if strings.HasPrefix(e.Name, "worker/") {
				n++
			}
		}
		return n
	}
	for _, n := range []int{5, 8, 20} {
		next, err := rt.UpdateConfig(ctx, []byte(fmt.Sprintf(`{"parallel_execution": {"max_workers": %d}}`, n)))
		if next == nil {
			t.Fatalf("max_workers %d refused: %v", n, err)
		}
		// Shrinking reports the retired workers as late (see
		// TestShrinkingWorkersIsAcknowledged); the change is in force anyway.
		if err != nil && !errors.Is(err, deer.ErrNotApplied) {
			t.Fatalf("max_workers %d: %v", n, err)
		}
		if got := rt.Metrics(ctx).AdvancedOptimizations.ParallelExecutor.Workers; got != n {
			t.Errorf("workers after max_workers %d = %d", n, got)
		}
		actortest.Eventually(t, fmt.Sprintf("%d workers in the registry", n), func() bool { return workers() == n })
	}
}

// TestShrinkingWorkersIsAcknowledged: the workers a smaller max_workers
// retires are gone on purpose; they are not actors that failed to apply the
// change, and the caller (POST /config) must not be told so.
func TestShrinkingWorkersIsAcknowledged(t *testing.T) {

	rt := start(t, testConfig(t))
	for _, n := range []int{5, 8, 3} {
		_, err := rt.UpdateConfig(context.Background(), []byte(fmt.Sprintf(`{"parallel_execution": {"max_workers": %d}}`, n)))
		if err == nil {
			continue
		}
		// On a loaded machine a live actor may miss the one-second window;
		// a retired worker must never be what is reported late.
		for i := n + 1; i <= 20; i++ {
			if strings.Contains(err.Error(), fmt.Sprintf("worker/%d ", i)) || strings.Contains(err.Error(), fmt.Sprintf("worker/%d]", i)) {
				t.Errorf("max_workers %d: retired worker/%d reported late: %v", n, i, err)
			}
		}
	}
}

// TestEveryActorAnswersTheAdminQueries: /health, /metrics, readiness and
// configuration changes ask every registered actor; one that does not
// answer a kind of query makes each such request wait out the ask timeout.
func TestEveryActorAnswersTheAdminQueries(t *testing.T) {
	rt := start(t, testConfig(t))
	queries := []any{&messages.Ping{Seq: 1}, &messages.StatusQuery{}, &messages.StatsQuery{}, &messages.ApplyConfig{Config: rt.Config()}}
	entries := rt.Registry().Entries()
	// The registry must hold the tree, or the loop below asks no one.
	for _, name := range []string{"observability", "router", "worker/1", "cache/l1", "metrics"} {
		entry(t, rt, name)
	}
	for _, e := range entries {
		for _, q := range queries {
			if _, err := rt.System().Root.RequestFuture(e.PID, q, 2*time.Second).Result(); err != nil {
				t.Errorf("%s does not answer %T: %v", e.Name, q, err)
			}
		}
	}
}

// TestComponentsUseTheSPECStates: SPEC §4 lets /health's components be
// healthy, degraded, restarting or down; an upstream without batching is
// not a reason to report batch_processor as anything else.
func TestComponentsUseTheSPECStates(t *testing.T) {

	cfg := testConfig(t)
	cfg.Upstreams = map[string]conf.Upstream{"search": {BaseURL: "http://127.0.0.1:9", Cache: "auto", Timeout: 60}}
	for _, advanced := range []bool{true, false} {
		cfg.EnableAdvancedOptimization = advanced
		rt := start(t, cfg.Clone())
		components := rt.Health(context.Background()).Components
		for _, k := range []string{"connection_pool", "request_queue", "batch_processor"} {
			if _, ok := components[k]; !ok {
				t.Errorf("advanced=%v: /health has no components.%s: %v", advanced, k, components)
			}
		}
		for k, v := range components {
			switch v {
			case "healthy", "degraded", "restarting", "down":
			default:
				t.Errorf("advanced=%v: components.%s = %q, not a SPEC state", advanced, k, v)
			}
		}
	}
}
