package batch

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/messages"
)

// TestMain fails the package when goroutines outlive its tests (goleak).
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

const wait = 5 * time.Second

// newSystem returns an actor system, quiet, shut down when the test ends.
func newSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.NewTextHandler(io.Discard, nil))
		}),
		// Each dead letter starts a goroutine living one throttle interval;
		// keep it short so goleak does not see it outlive the tests.
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	t.Cleanup(system.Shutdown)
	return system
}

// spawn starts props and stops the actor when the test ends (before the
// system shuts down: cleanups run last-in first-out).
func spawn(t *testing.T, system *actor.ActorSystem, props *actor.Props) *actor.PID {
	t.Helper()
	pid := system.Root.Spawn(props)
	t.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	// Started is processed asynchronously; a round trip makes sure it ran
	// with the configuration the test started with.
	if _, err := system.Root.RequestFuture(pid, &messages.Ping{}, wait).Result(); err != nil {
		t.Fatalf("spawned actor does not answer: %v", err)
	}
	return pid
}

// probe is an actor that forwards every user message it gets to a channel.
func probe(t *testing.T, system *actor.ActorSystem) (*actor.PID, chan any) {
	ch := make(chan any, 256)
	pid := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		}
		ch <- c.Message()
	}))
	t.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	return pid, ch
}

func ask[T any](t *testing.T, system *actor.ActorSystem, pid *actor.PID, msg any) T {
	t.Helper()
	res, err := system.Root.RequestFuture(pid, msg, wait).Result()
	if err != nil {
		t.Fatalf("%T: %v", msg, err)
	}
	out, ok := res.(T)
	if !ok {
		t.Fatalf("%T answered %T", msg, res)
	}
	return out
}

func statsOf(t *testing.T, system *actor.ActorSystem, pid *actor.PID) *messages.BatchStats {
	t.Helper()
	return ask[*messages.StatsReport](t, system, pid, &messages.StatsQuery{}).Stats.(*messages.BatchStats)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func recv[T any](t *testing.T, ch chan any) T {
	t.Helper()
	select {
	case m := <-ch:
		out, ok := m.(T)
		if !ok {
			t.Fatalf("got %T, want %T", m, *new(T))
		}
		return out
	case <-time.After(wait):
		t.Fatalf("no %T within %v", *new(T), wait)
	}
	panic("unreachable")
}

type marker struct{}

// drain returns what reached the probe before a marker sent now: anything
// an actor sent the probe before answering our last request is included.
func drain(t *testing.T, system *actor.ActorSystem, pid *actor.PID, ch chan any) []any {
	t.Helper()
	system.Root.Send(pid, &marker{})
	var got []any
	for {
		select {
		case m := <-ch:
			if _, ok := m.(*marker); ok {
				return got
			}
			got = append(got, m)
		case <-time.After(wait):
			t.Fatal("probe marker lost")
		}
	}
}

// panicNow makes an actor built with panicky crash, so that tests see a
// supervisor restart it.
type panicNow struct{}

func panicky(props *actor.Props) *actor.Props {
	return props.Configure(actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if _, ok := env.Message.(*panicNow); ok {
				panic("injected by test")
			}
			next(c, env)
		}
	}))
}
