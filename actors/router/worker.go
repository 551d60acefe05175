package router

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/messages"
)

// Worker executes one task at a time; max_workers of them bound the
// concurrency. Until the task path exists it answers the router's health
// checks and the admin queries.
type Worker struct {
	name string
	log  zerolog.Logger
}

var _ actor.Actor = (*Worker)(nil)

// hang blocks the worker until release is closed: tests use it to make a
// worker stop answering, as a stuck upstream call would.
type hang struct{ release <-chan struct{} }

func workerProps(name string, log zerolog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &Worker{name: name, log: log.With().Str("actor", name).Logger()}
	})
}

// Receive handles one message.
func (w *Worker) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	case *messages.Ping:
		respond(ctx, &messages.Pong{Actor: w.name, Seq: msg.Seq})
	case *messages.StatusQuery:
		respond(ctx, &messages.StatusReport{Actor: w.name, State: messages.StateHealthy})
	case *messages.ApplyConfig:
		respond(ctx, &messages.ConfigApplied{Actor: w.name})
	case *hang:
		<-msg.release
	default:
		w.log.Debug().Type("type", msg).Msg("unknown message")
	}
}

// respond answers the sender, if there is one: a reply to a plain Send would
// be a dead letter.
func respond(ctx actor.Context, reply any) {
	if ctx.Sender() != nil {
		ctx.Respond(reply)
	}
}
