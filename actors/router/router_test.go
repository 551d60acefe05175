package router

import (
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/internal/leaktest"

	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

type fixture struct {
	t      *testing.T
	system *actor.ActorSystem
	pid    *actor.PID
	reg    *supervisor.Registry
	clk    *clock.Fake
	set    *metrics.Set
}

func newFixture(t *testing.T, cfg *conf.Config, opts ...func(*Deps)) *fixture {
	t.Helper()
	f := &fixture{
		t:      t,
		system: actor.NewActorSystem(),
		reg:    supervisor.NewRegistry(),
		clk:    clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		set:    metrics.NewSet(),
	}
	log := zerolog.New(io.Discard)
	strategy := supervisor.NewStrategy(supervisor.DefaultPolicy(), f.clk, f.reg, f.set, log)
	d := Deps{
		Name: "router", Live: conf.NewLive(cfg), Clock: f.clk, Log: log, Metrics: f.set,
		Registry: f.reg, Strategy: strategy,
	}
	for _, o := range opts {
		o(&d)
	}
	f.pid = f.system.Root.Spawn(Props(d))
	t.Cleanup(func() {
		strategy.Stop()
		_ = f.system.Root.StopFuture(f.pid).Wait()
		f.system.Shutdown()
	})
	f.stats() // answered after Started: the workers exist from here on
	return f
}

func (f *fixture) stats() *messages.RouterStats {
	f.t.Helper()
	res, err := f.system.Root.RequestFuture(f.pid, &messages.StatsQuery{}, time.Second).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return res.(*messages.StatsReport).Stats.(*messages.RouterStats)
}

func (f *fixture) apply(cfg *conf.Config) {
	f.t.Helper()
	if _, err := f.system.Root.RequestFuture(f.pid, &messages.ApplyConfig{Config: cfg}, time.Second).Result(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) workerNames() []string {
	var names []string
	for _, e := range f.reg.Entries() {
		if e.Group == "router" {
			names = append(names, e.Name)
		}
	}
	return names
}

func TestRouterSpawnsMaxWorkers(t *testing.T) {
	cfg := conf.Default()
	cfg.ParallelExecution.MaxWorkers = 4
	f := newFixture(t, cfg)
	if got := f.stats().Workers; got != 4 {
		t.Fatalf("workers = %d, want 4", got)
	}
	names := f.workerNames()
	want := []string{"worker/1", "worker/2", "worker/3", "worker/4"}
	if len(names) != len(want) {
		t.Fatalf("registered workers %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("registered workers %v, want %v", names, want)
		}
	}
	// Each registered worker is a live actor.
	for _, name := range names {
		pid, _ := f.reg.PID(name)
		if _, err := f.system.Root.RequestFuture(pid, &messages.Ping{}, time.Second).Result(); err != nil {
			t.Errorf("%s does not answer: %v", name, err)
		}
	}
}

// Deps.Receive wraps every worker's receive under its SPEC name, the
// workers spawned later included.
func TestReceiveWrapsEveryWorker(t *testing.T) {
	cfg := conf.Default()
	cfg.ParallelExecution.MaxWorkers = 2
	var mu sync.Mutex
	pinged := map[string]int{}
	f := newFixture(t, cfg, func(d *Deps) {
		d.Receive = func(name string, next actor.ReceiverFunc) actor.ReceiverFunc {
			return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
				if _, ok := env.Message.(*messages.Ping); ok {
					mu.Lock()
					pinged[name]++
					mu.Unlock()
				}
				next(c, env)
			}
		}
	})
	bigger := cfg.Clone()
	bigger.ParallelExecution.MaxWorkers = 3
	f.apply(bigger)
	for _, name := range []string{"worker/1", "worker/2", "worker/3"} {
		pid, _ := f.reg.PID(name)
		if _, err := f.system.Root.RequestFuture(pid, &messages.Ping{}, time.Second).Result(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"worker/1": 1, "worker/2": 1, "worker/3": 1}; !maps.Equal(pinged, want) {
		t.Errorf("pings seen by the wrap: %v, want %v", pinged, want)
	}
}

func TestApplyConfigResizesWorkerSet(t *testing.T) {
	cfg := conf.Default()
	f := newFixture(t, cfg)
	if got := f.stats().Workers; got != 20 {
		t.Fatalf("workers = %d, want 20", got)
	}
	smaller := cfg.Clone()
	smaller.ParallelExecution.MaxWorkers = 5
	f.apply(smaller)
	if got := f.stats().Workers; got != 5 {
		t.Errorf("workers after shrink = %d, want 5", got)
	}
	if got := len(f.workerNames()); got != 5 {
		t.Errorf("registered workers after shrink = %d, want 5", got)
	}
	bigger := cfg.Clone()
	bigger.ParallelExecution.MaxWorkers = 9
	f.apply(bigger)
	if got := f.stats().Workers; got != 9 {
		t.Errorf("workers after grow = %d, want 9", got)
	}
	if got := len(f.workerNames()); got != 9 {
		t.Errorf("registered workers after grow = %d, want 9", got)
	}
	if got := f.set.GetOrCreateGauge("deer_workers", nil).Get(); got != 9 {
		t.Errorf("deer_workers = %v, want 9", got)
	}
}

func TestStatsFollowAdvancedOptimization(t *testing.T) {
	cfg := conf.Default()
	cfg.EnableAdvancedOptimization = false
	f := newFixture(t, cfg)
	st := f.stats()
	if st.PriorityLevels != 1 || st.LoadBalancing {
		t.Errorf("with advanced optimization off: levels %d, load balancing %v; want 1, false", st.PriorityLevels, st.LoadBalancing)
	}
	on := cfg.Clone()
	on.EnableAdvancedOptimization = true
	f.apply(on)
	if st := f.stats(); st.PriorityLevels != 3 || !st.LoadBalancing {
		t.Errorf("with advanced optimization on: levels %d, load balancing %v; want 3, true", st.PriorityLevels, st.LoadBalancing)
	}
}

func TestHealthCheckReplacesAWorkerThatStoppedAnswering(t *testing.T) {
	cfg := conf.Default()
	cfg.ParallelExecution.MaxWorkers = 3
	cfg.ParallelExecution.HealthCheckInterval = 0.1 // the ping timeout is the interval, in real time
	f := newFixture(t, cfg)
	stuck, _ := f.reg.PID("worker/2")
	release := make(chan struct{})
	defer close(release)
	f.system.Root.Send(stuck, &worker.Hang{Release: release})

	actortest.Eventually(t, "the health check timer", func() bool { return len(f.clk.Pending()) > 0 })
	f.clk.Advance(100 * time.Millisecond)
	actortest.Eventually(t, "worker/2 to be replaced", func() bool { return f.stats().Replaced == 1 })

	pid, _ := f.reg.PID("worker/2")
	if pid.Id == stuck.Id {
		t.Fatalf("worker/2 still has the stuck PID %s", pid.Id)
	}
	if _, err := f.system.Root.RequestFuture(pid, &messages.Ping{}, time.Second).Result(); err != nil {
		t.Errorf("the replacement worker does not answer: %v", err)
	}
	if st := f.stats(); st.Workers != 3 {
		t.Errorf("workers = %d, want 3", st.Workers)
	}
	// The healthy workers were left alone.
	if f.stats().Replaced != 1 {
		t.Errorf("replaced = %d, want 1", f.stats().Replaced)
	}
}

// A restarted router's workers get actor ids of their own: a late report
// from a worker of the previous life (a cancelled call, say) must never
// match the new worker of the same slot, or it would answer the task the
// new worker runs.
func TestRestartedRouterNamesItsWorkersAfresh(t *testing.T) {
	cfg := conf.Default()
	cfg.ParallelExecution.MaxWorkers = 3
	f := newFixture(t, cfg)
	pids := func() map[string]string {
		out := map[string]string{}
		for _, e := range f.reg.Entries() {
			if e.Group == "router" {
				out[e.Name] = e.PID.Id
			}
		}
		return out
	}
	before := pids()
	if len(before) != 3 {
		t.Fatalf("workers before the restart: %v", before)
	}
	// Restart the router as its supervisor does after a crash.
	proc, _ := f.system.ProcessRegistry.Get(f.pid)
	proc.SendSystemMessage(f.pid, &actor.Restart{})
	var after map[string]string
	actortest.Eventually(t, "the restarted router's workers", func() bool {
		after = pids()
		return len(after) == 3 && after["worker/1"] != before["worker/1"]
	})
	for name, id := range after {
		for _, old := range before {
			if id == old {
				t.Fatalf("%s after the restart has the previous life's id %s", name, id)
			}
		}
	}
}
