// Package reply gives code outside the actor system (HTTP handlers, worker
// goroutines) a mailbox for the one answer it waits for.
package reply

import (
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Box is a registered process that drops the first answer it receives into
// a channel. Unlike a protoactor future it needs no timer and no goroutine,
// and the caller can wait on it together with its context. Close it when done.
type Box struct {
	ch     chan any
	pid    *actor.PID
	sys    *actor.ActorSystem
	closed atomic.Bool // set by Close: a sender holding a cached PID still reaches us
}

var _ actor.Process = (*Box)(nil)

// New registers a box in sys that keeps one answer.
func New(sys *actor.ActorSystem) *Box { return NewBuffered(sys, 1) }

// NewBuffered registers a box that keeps up to n answers: for a long-lived
// box whose owner correlates answers itself and skips stale ones.
func NewBuffered(sys *actor.ActorSystem, n int) *Box {
	b := &Box{ch: make(chan any, n), sys: sys}
	b.pid, _ = sys.ProcessRegistry.Add(b, "reply$"+sys.ProcessRegistry.NextId())
	return b
}

// Boxes recycles registered boxes: registering a process costs more than
// the rest of a reply. Only a box whose one answer has been received may go
// back (Put); a box abandoned before its answer must be Closed instead, or
// the late answer would reach the next user.
type Boxes struct {
	sys  *actor.ActorSystem
	pool sync.Pool
}

// NewBoxes returns a recycler for sys.
func NewBoxes(sys *actor.ActorSystem) *Boxes { return &Boxes{sys: sys} }

// Get returns an empty registered box.
func (bs *Boxes) Get() *Box {
	if b, ok := bs.pool.Get().(*Box); ok {
		return b
	}
	return New(bs.sys)
}

// Put recycles a box whose answer was received.
func (bs *Boxes) Put(b *Box) { bs.pool.Put(b) }

// PID is where answers go: use it as ReplyTo, or as the custom sender.
func (b *Box) PID() *actor.PID { return b.pid }

// C delivers the answer.
func (b *Box) C() <-chan any { return b.ch }

// Close unregisters the box; answers sent after it are dead letters.
func (b *Box) Close() {
	b.closed.Store(true)
	b.sys.ProcessRegistry.Remove(b.pid)
}

// SendUserMessage keeps the answer while there is room; beyond that answers
// are dropped rather than block the sending actor.
func (b *Box) SendUserMessage(pid *actor.PID, message any) {
	if b.closed.Load() {
		// A sender's PID caches the process it resolved: after Close it
		// still lands here. Count it where late answers belong.
		b.sys.DeadLetter.SendUserMessage(pid, message)
		return
	}
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case b.ch <- msg:
	default:
	}
}

// SendSystemMessage ignores system messages: a box watches nothing.
func (b *Box) SendSystemMessage(*actor.PID, any) {}

// Stop does nothing; Close unregisters.
func (b *Box) Stop(*actor.PID) {}
