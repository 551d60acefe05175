package faults

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// Injected is the panic value of a panic fault: what the supervisor logs
// and /health shows as the actor's last failure.
type Injected struct {
	ID      string // the fault's id
	Actor   string // the actor that panicked
	Message string // the type of the message it panicked on
}

func (p *Injected) Error() string {
	return fmt.Sprintf("fault %s: injected panic in %s on %s", p.ID, p.Actor, p.Message)
}

// Wrap returns the receive of the actor named name with the set's faults
// in front of next: a protoactor receiver middleware body. Only user
// messages are considered; the library's lifecycle and system messages
// always pass, so a fault cannot stop an actor from starting or stopping.
func (s *Set) Wrap(name string, next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		if e, ok := s.fire(name, env.Message); ok {
			switch e.spec.Kind {
			case Panic:
				panic(&Injected{ID: e.id, Actor: name, Message: TypeName(env.Message)})
			case Delay:
				s.sleep(e.spec.Delay) // in the receive: the mailbox waits too
			case Drop:
				return
			}
		}
		next(c, env)
	}
}

// lifecycle reports the library's own messages (Started, Restarting,
// Stopping, Stopped, Terminated, PoisonPill, ReceiveTimeout…).
func lifecycle(msg any) bool {
	switch msg.(type) {
	case actor.SystemMessage, actor.AutoReceiveMessage, *actor.ReceiveTimeout:
		return true
	}
	return false
}
