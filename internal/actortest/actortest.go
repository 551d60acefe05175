// Package actortest holds the helpers the actor packages' tests share: a
// quiet actor system, spawning with a readiness round trip, a probe actor
// that forwards to a channel, typed asks, fake-clock timer checks, and
// crash injection.
package actortest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// Wait bounds every wait in these helpers: nothing takes more than a
// fraction of it when things work, and a test that waits in vain fails
// with what it waited for instead of hanging until the binary's timeout.
const Wait = 10 * time.Second

// NewSystem returns an actor system, quiet, shut down when the test ends.
func NewSystem(t *testing.T) *actor.ActorSystem {
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

// Spawn starts props and stops the actor when the test ends (before the
// system shuts down: cleanups run last-in first-out).
func Spawn(t *testing.T, system *actor.ActorSystem, props *actor.Props) *actor.PID {
	t.Helper()
	pid := system.Root.Spawn(props)
	t.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	// Started is processed asynchronously; a round trip makes sure it ran
	// with the configuration the test started with.
	if _, err := system.Root.RequestFuture(pid, &messages.Ping{}, Wait).Result(); err != nil {
		t.Fatalf("spawned actor does not answer: %v", err)
	}
	return pid
}

// Probe is an actor that forwards every user message it gets to a channel.
func Probe(t *testing.T, system *actor.ActorSystem) (*actor.PID, chan any) {
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

// Ask sends msg and returns the answer as a T, failing the test otherwise.
func Ask[T any](t *testing.T, system *actor.ActorSystem, pid *actor.PID, msg any) T {
	t.Helper()
	res, err := system.Root.RequestFuture(pid, msg, Wait).Result()
	if err != nil {
		t.Fatalf("%T: %v", msg, err)
	}
	out, ok := res.(T)
	if !ok {
		t.Fatalf("%T answered %T", msg, res)
	}
	return out
}

// Stats asks pid for its stats and returns them as a T (one of the
// messages.*Stats), failing the test otherwise.
func Stats[T any](t *testing.T, system *actor.ActorSystem, pid *actor.PID) T {
	t.Helper()
	r := Ask[*messages.StatsReport](t, system, pid, &messages.StatsQuery{})
	st, ok := r.Stats.(T)
	if !ok {
		t.Fatalf("stats are a %T, want %T", r.Stats, *new(T))
	}
	return st
}

// AwaitTimer waits until clk has a timer pending: an actor sets its timers
// on its own goroutine, after the message that made it.
func AwaitTimer(t *testing.T, clk *clock.Fake) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if !clk.WaitForTimers(ctx, 1) {
		t.Fatal("no timer set")
	}
}

// Timers checks that clk's pending timers are want, in order; with want
// not empty it first waits for one to be set.
func Timers(t *testing.T, clk *clock.Fake, want ...time.Duration) {
	t.Helper()
	if len(want) > 0 {
		AwaitTimer(t, clk)
	}
	if got := clk.Pending(); !slices.Equal(got, want) {
		t.Fatalf("timers %v, want %v", got, want)
	}
}

// Eventually polls cond until it holds or Wait passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Wait, what, cond)
}

// EventuallyWithin polls cond until it holds or d passes: for a condition
// that takes longer than Wait by design (snapshots taken every second).
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Recv returns the next message on ch as a T, failing the test otherwise.
func Recv[T any](t *testing.T, ch chan any) T {
	t.Helper()
	m := Await(t, fmt.Sprintf("a %T", *new(T)), ch)
	out, ok := m.(T)
	if !ok {
		t.Fatalf("got %T, want %T", m, *new(T))
	}
	return out
}

// Await returns the next value on ch, failing the test if none comes
// within Wait; what names it in the failure.
func Await[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Wait):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

type marker struct{}

// Drain returns what reached the probe before a marker sent now: anything
// an actor sent the probe before answering our last request is included.
func Drain(t *testing.T, system *actor.ActorSystem, pid *actor.PID, ch chan any) []any {
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
		case <-time.After(Wait):
			t.Fatal("probe marker lost")
		}
	}
}

// PanicNow makes an actor built with Panicky crash, so that tests see a
// supervisor restart it.
type PanicNow struct{}

func Panicky(props *actor.Props) *actor.Props {
	return props.Configure(actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if _, ok := env.Message.(*PanicNow); ok {
				panic("injected by test")
			}
			next(c, env)
		}
	}))
}

// SyncBuffer collects an actor's log output while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Count returns how many times sub occurs in what was written.
func (s *SyncBuffer) Count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// String returns what was written.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
