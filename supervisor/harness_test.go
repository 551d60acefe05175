package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

const waitLimit = 5 * time.Second

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// crash panics on its first fails deliveries, then is answered with *done.
type crash struct{ fails int }

type done struct{ deliveries int }

// recorder outlives the probe's incarnations and tells the test what they saw.
type recorder struct {
	mu          sync.Mutex
	deliveries  map[*crash]int
	starts      int
	startPanics int      // the first startPanics incarnations panic in Started
	started     chan int // incarnation numbers that started without panicking
}

func newRecorder(startPanics int) *recorder {
	return &recorder{deliveries: map[*crash]int{}, startPanics: startPanics, started: make(chan int, 100)}
}

func (r *recorder) deliver(m *crash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliveries[m]++
	return r.deliveries[m]
}

func (r *recorder) delivered(m *crash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deliveries[m]
}

func (r *recorder) start() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts++
	return r.starts
}

// probe is the supervised test actor.
type probe struct {
	name string
	rec  *recorder
}

func (p *probe) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		n := p.rec.start()
		if n <= p.rec.startPanics {
			panic(fmt.Sprintf("%s: start %d", p.name, n))
		}
		p.rec.started <- n
	case *crash:
		n := p.rec.deliver(m)
		if n <= m.fails {
			panic(fmt.Sprintf("%s: delivery %d", p.name, n))
		}
		if ctx.Sender() != nil {
			ctx.Respond(&done{deliveries: n})
		}
	case *messages.Ping:
		ctx.Respond(&messages.Pong{Actor: p.name, Seq: m.Seq})
	}
}

func probeProps(name string, rec *recorder) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &probe{name: name, rec: rec} })
}

// harness is one actor system with a fake clock, a registry and a metric set.
type harness struct {
	t   *testing.T
	sys *actor.ActorSystem
	clk *clock.Fake
	reg *Registry
	set *metrics.Set
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(time.Millisecond), // its timer goroutine must not outlive the test
	)
	t.Cleanup(sys.Shutdown)
	return &harness{t: t, sys: sys, clk: clock.NewFake(t0), reg: NewRegistry(), set: metrics.NewSet()}
}

func (h *harness) strategy(p Policy, opts ...Option) *Strategy {
	opts = append([]Option{WithRand(rand.New(rand.NewPCG(1, 2)))}, opts...)
	return NewStrategy(p, h.clk, h.reg, h.set, zerolog.Nop(), opts...)
}

// spawnRoot starts a root group and stops it (waiting) when the test ends.
func (h *harness) spawnRoot(name string, children func() []ChildSpec, s *Strategy) *actor.PID {
	h.t.Helper()
	pid, err := SpawnRoot(h.sys.Root, name, children, s, h.reg, zerolog.Nop())
	if err != nil {
		h.t.Fatal(err)
	}
	// Registered before Shutdown's cleanup, so it runs first.
	h.t.Cleanup(func() {
		if err := h.sys.Root.StopFuture(pid).Wait(); err != nil {
			h.t.Errorf("stop %s: %v", name, err)
		}
	})
	return pid
}

func (h *harness) pid(name string) *actor.PID {
	h.t.Helper()
	// A child may start before its group has registered it.
	var pid *actor.PID
	actortest.Eventually(h.t, name+" is registered", func() bool {
		var ok bool
		pid, ok = h.reg.PID(name)
		return ok
	})
	return pid
}

// awaitTimer waits until a restart is pending and returns its delay.
func (h *harness) awaitTimer() time.Duration {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if !h.clk.WaitForTimers(ctx, 1) {
		h.t.Fatal("no restart was scheduled")
	}
	p := h.clk.Pending()
	if len(p) != 1 {
		h.t.Fatalf("pending timers %v, want exactly one", p)
	}
	return p[0]
}

// fireTimer waits for the one pending restart, advances the clock to it and
// returns its delay.
func (h *harness) fireTimer() time.Duration {
	h.t.Helper()
	d := h.awaitTimer()
	h.clk.Advance(d)
	return d
}

func (h *harness) state(name string) State {
	h.t.Helper()
	e, ok := h.reg.Get(name)
	if !ok {
		h.t.Fatalf("%s is not registered", name)
	}
	return e.State
}

func (h *harness) counter(metric, name string) uint64 {
	return h.set.GetOrCreateCounter(fmt.Sprintf("%s{actor=%q}", metric, name)).Get()
}

func (h *harness) ping(pid *actor.PID) *messages.Pong {
	h.t.Helper()
	res, err := h.sys.Root.RequestFuture(pid, &messages.Ping{Seq: 7}, waitLimit).Result()
	if err != nil {
		h.t.Fatalf("ping %s: %v", pid.Id, err)
	}
	pong, ok := res.(*messages.Pong)
	if !ok || pong.Seq != 7 {
		h.t.Fatalf("ping %s: got %#v", pid.Id, res)
	}
	return pong
}

func awaitStarted(t *testing.T, rec *recorder, want int) {
	t.Helper()
	select {
	case n := <-rec.started:
		if n != want {
			t.Fatalf("incarnation %d started, want %d", n, want)
		}
	case <-time.After(waitLimit):
		t.Fatalf("incarnation %d did not start", want)
	}
}

func children(specs ...ChildSpec) func() []ChildSpec {
	return func() []ChildSpec { return specs }
}

func (h *harness) logger() zerolog.Logger { return zerolog.Nop() }
