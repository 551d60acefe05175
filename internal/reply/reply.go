// Package reply gives code outside the actor system (HTTP handlers, worker
// goroutines) a mailbox for the one answer it waits for.
package reply

import (
	"github.com/asynkron/protoactor-go/actor"
)

// Box is a registered process that drops the first answer it receives into
// a channel. Unlike a protoactor future it needs no timer and no goroutine,
// and the caller can wait on it together with its context. Close it when done.
type Box struct {
	ch  chan any
	pid *actor.PID
	sys *actor.ActorSystem
}

var _ actor.Process = (*Box)(nil)

// New registers a box in sys.
func New(sys *actor.ActorSystem) *Box {
	b := &Box{ch: make(chan any, 1), sys: sys}
	b.pid, _ = sys.ProcessRegistry.Add(b, "reply$"+sys.ProcessRegistry.NextId())
	return b
}

// PID is where answers go: use it as ReplyTo, or as the custom sender.
func (b *Box) PID() *actor.PID { return b.pid }

// C delivers the answer.
func (b *Box) C() <-chan any { return b.ch }

// Close unregisters the box; answers sent after it are dead letters.
func (b *Box) Close() { b.sys.ProcessRegistry.Remove(b.pid) }

// SendUserMessage keeps the first answer; later ones are dropped rather
// than block the sending actor.
func (b *Box) SendUserMessage(_ *actor.PID, message any) {
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
