package reply

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// deadline bounds every wait: it is a failure limit, never a synchronisation.
const deadline = 10 * time.Second

func newSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(time.Millisecond), // its timer goroutine must not outlive the test
	)
	t.Cleanup(sys.Shutdown)
	return sys
}

// receive waits for one answer from b.
func receive(t *testing.T, b *Box) any {
	t.Helper()
	select {
	case m := <-b.C():
		return m
	case <-time.After(deadline):
		t.Fatal("timed out waiting for an answer")
		return nil
	}
}

// assertEmpty fails if b holds an answer. Sends into a box are synchronous
// (a box is a process, not an actor with a mailbox), so after Root.Send
// returns there is nothing in flight.
func assertEmpty(t *testing.T, b *Box) {
	t.Helper()
	select {
	case m := <-b.C():
		t.Fatalf("box holds an unexpected answer %#v", m)
	default:
	}
}

// deadLetters records the dead letters published in sys.
type deadLetters struct {
	mu     sync.Mutex
	events []*actor.DeadLetterEvent
}

func watchDeadLetters(t *testing.T, sys *actor.ActorSystem) *deadLetters {
	t.Helper()
	d := &deadLetters{}
	sub := sys.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*actor.DeadLetterEvent); ok {
			d.mu.Lock()
			d.events = append(d.events, e)
			d.mu.Unlock()
		}
	})
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	return d
}

func (d *deadLetters) to(pid *actor.PID) []any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []any
	for _, e := range d.events {
		if e.PID.Equal(pid) {
			out = append(out, e.Message)
		}
	}
	return out
}

type question struct{ n int }
type answer struct{ n int }

// spawnResponder starts an actor that answers every question to its sender.
func spawnResponder(t *testing.T, sys *actor.ActorSystem) *actor.PID {
	t.Helper()
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if q, ok := ctx.Message().(question); ok {
			ctx.Respond(answer{n: q.n * 10})
		}
	}))
	t.Cleanup(func() {
		if err := sys.Root.StopFuture(pid).Wait(); err != nil {
			t.Errorf("stop responder: %v", err)
		}
	})
	return pid
}

func TestBoxIsRegistered(t *testing.T) {
	sys := newSystem(t)
	b := New(sys)
	defer b.Close()

	if b.PID() == nil {
		t.Fatal("PID() is nil")
	}
	p, ok := sys.ProcessRegistry.Get(b.PID())
	if !ok || p != b {
		t.Fatalf("registry has %T (found %v) at %v, want the box", p, ok, b.PID())
	}
	if other := New(sys); other.PID().Equal(b.PID()) {
		t.Errorf("two boxes share PID %v", b.PID())
	} else {
		other.Close()
	}
}

func TestBoxReceivesAnswerFromActor(t *testing.T) {
	sys := newSystem(t)
	responder := spawnResponder(t, sys)
	b := New(sys)
	defer b.Close()

	// The box is the custom sender: the actor's Respond goes to it.
	sys.Root.RequestWithCustomSender(responder, question{n: 4}, b.PID())
	if got := receive(t, b); got != (answer{n: 40}) {
		t.Fatalf("box got %#v, want answer{40}", got)
	}
}

func TestBoxUnwrapsEnvelope(t *testing.T) {
	sys := newSystem(t)
	b := New(sys)
	defer b.Close()
	from := actor.NewPID(sys.Address(), "someone")

	// A message sent with a sender arrives as a *MessageEnvelope; the box
	// hands over only the message.
	sys.Root.RequestWithCustomSender(b.PID(), answer{n: 1}, from)
	got := receive(t, b)
	if _, isEnvelope := got.(*actor.MessageEnvelope); isEnvelope {
		t.Fatalf("box delivered the envelope %#v, want the message", got)
	}
	if got != (answer{n: 1}) {
		t.Fatalf("box got %#v, want answer{1}", got)
	}
}

func TestBoxKeepsOnlyFirstAnswer(t *testing.T) {
	sys := newSystem(t)
	b := New(sys)
	defer b.Close()
	from := actor.NewPID(sys.Address(), "someone")

	sent := make(chan struct{})
	go func() {
		defer close(sent)
		// Mixed plain and enveloped answers; none may block the sender.
		sys.Root.Send(b.PID(), answer{n: 1})
		sys.Root.Send(b.PID(), answer{n: 2})
		sys.Root.RequestWithCustomSender(b.PID(), answer{n: 3}, from)
		for i := range 100 {
			sys.Root.Send(b.PID(), answer{n: 4 + i})
		}
	}()
	select {
	case <-sent:
	case <-time.After(deadline):
		t.Fatal("sending extra answers to a full box blocked")
	}

	if got := receive(t, b); got != (answer{n: 1}) {
		t.Fatalf("box got %#v, want the first answer{1}", got)
	}
	assertEmpty(t, b)
}

func TestBufferedBoxKeepsN(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		sys := newSystem(t)
		b := NewBuffered(sys, n)
		for i := range n + 3 {
			sys.Root.Send(b.PID(), answer{n: i})
		}
		for i := range n {
			if got := receive(t, b); got != (answer{n: i}) {
				t.Fatalf("n=%d: answer %d is %#v, want answer{%d}", n, i, got, i)
			}
		}
		assertEmpty(t, b)

		// Room again: the box takes new answers.
		sys.Root.Send(b.PID(), answer{n: 99})
		if got := receive(t, b); got != (answer{n: 99}) {
			t.Fatalf("n=%d: after draining, got %#v, want answer{99}", n, got)
		}
		b.Close()
	}
}

func TestCloseUnregisters(t *testing.T) {
	sys := newSystem(t)
	dead := watchDeadLetters(t, sys)
	responder := spawnResponder(t, sys)
	b := New(sys)

	// Abandoned before its answer: the box is closed, the answer comes late.
	b.Close()
	if p, ok := sys.ProcessRegistry.Get(b.PID()); ok {
		t.Fatalf("registry still has %T at %v after Close", p, b.PID())
	}
	sys.Root.Send(b.PID(), answer{n: 1})
	sys.Root.RequestWithCustomSender(b.PID(), answer{n: 2}, responder)

	got := dead.to(b.PID())
	if len(got) != 2 || got[0] != (answer{n: 1}) || got[1] != (answer{n: 2}) {
		t.Fatalf("dead letters to the closed box: %#v, want answer{1}, answer{2}", got)
	}
	assertEmpty(t, b)
}

func TestCloseAfterAnswerUnregisters(t *testing.T) {
	sys := newSystem(t)
	dead := watchDeadLetters(t, sys)
	b := NewBuffered(sys, 4)

	// A long-lived box gets an answer at its PID as a sender would know it
	// (a PID value, not the box's own *PID), then is closed.
	addr := actor.NewPID(b.PID().Address, b.PID().Id)
	sys.Root.Send(addr, answer{n: 1})
	if got := receive(t, b); got != (answer{n: 1}) {
		t.Fatalf("box got %#v, want answer{1}", got)
	}
	b.Close()

	late := actor.NewPID(b.PID().Address, b.PID().Id)
	sys.Root.Send(late, answer{n: 2})
	if got := dead.to(b.PID()); len(got) != 1 || got[0] != (answer{n: 2}) {
		t.Fatalf("dead letters to the closed box: %#v, want answer{2}", got)
	}
	assertEmpty(t, b)
}

func TestBoxesGetReturnsRegisteredBox(t *testing.T) {
	sys := newSystem(t)
	bs := NewBoxes(sys)
	b := bs.Get()
	defer b.Close()

	if p, ok := sys.ProcessRegistry.Get(b.PID()); !ok || p != b {
		t.Fatalf("registry has %T (found %v) at %v, want the box", p, ok, b.PID())
	}
	assertEmpty(t, b)
	sys.Root.Send(b.PID(), answer{n: 1})
	if got := receive(t, b); got != (answer{n: 1}) {
		t.Fatalf("box got %#v, want answer{1}", got)
	}
}

func TestBoxesRecycle(t *testing.T) {
	sys := newSystem(t)
	responder := spawnResponder(t, sys)
	bs := NewBoxes(sys)

	// sync.Pool may drop a Put (the race detector drops one in four on
	// purpose, and a GC empties it), so recycling is tried until it happens;
	// every box, recycled or not, must work and start empty.
	recycled := false
	b := bs.Get()
	for i := 0; i < 200 && !recycled; i++ {
		sys.Root.RequestWithCustomSender(responder, question{n: i}, b.PID())
		if got := receive(t, b); got != (answer{n: i * 10}) {
			t.Fatalf("round %d: box got %#v, want answer{%d}", i, got, i*10)
		}
		bs.Put(b)

		next := bs.Get()
		if next == b {
			recycled = true
			if !next.PID().Equal(b.PID()) {
				t.Fatalf("recycled box changed PID from %v to %v", b.PID(), next.PID())
			}
		}
		assertEmpty(t, next)
		if p, ok := sys.ProcessRegistry.Get(next.PID()); !ok || p != next {
			t.Fatalf("round %d: box from Get is not registered at %v", i, next.PID())
		}
		b = next
	}
	if !recycled {
		t.Fatal("Get never returned a box that was Put")
	}

	// The recycled box takes its next user's answer.
	sys.Root.RequestWithCustomSender(responder, question{n: 7}, b.PID())
	if got := receive(t, b); got != (answer{n: 70}) {
		t.Fatalf("recycled box got %#v, want answer{70}", got)
	}
	b.Close()
}

// A sender's *PID caches the process it resolved, so after Close a late
// answer through the same PID value still reaches the box: it must go to
// the dead letters, not into the closed box.
func TestCloseTurnsLateAnswersThroughACachedPIDIntoDeadLetters(t *testing.T) {
	sys := newSystem(t)
	dead := watchDeadLetters(t, sys)
	b := NewBuffered(sys, 4)
	pid := b.PID()
	sys.Root.Send(pid, 1)
	receive(t, b)
	b.Close()
	sys.Root.Send(pid, 2) // same *PID value: its process is cached
	assertEmpty(t, b)
	// The box hands a late answer to the dead-letter process, which
	// publishes it on the event stream before Send returns: no wait.
	if got := dead.to(pid); len(got) != 1 || got[0] != 2 {
		t.Fatalf("dead letters to the closed box: %#v, want the late answer 2", got)
	}
}
