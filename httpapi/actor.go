package httpapi

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/messages"
)

// Actor is the `http` actor: the ingress's place in the supervision tree.
// The listener itself runs on net/http's goroutines; the actor reports its
// address and counters and the server's shutdown state.
type Actor struct {
	name     string
	addr     string
	counters *Counters
	draining func() bool
	log      zerolog.Logger
}

var _ actor.Actor = (*Actor)(nil)

// ActorProps builds the `http` actor for the listener on addr (server.addr
// needs a restart to change). draining reports whether the server is
// shutting down.
func ActorProps(addr string, counters *Counters, draining func() bool, log zerolog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{name: "http", addr: addr, counters: counters, draining: draining, log: log.With().Str("actor", "http").Logger()}
	})
}

// Receive handles one message.
func (a *Actor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	case *messages.StatusQuery:
		rep := &messages.StatusReport{Actor: a.name, State: messages.StateHealthy}
		if a.draining() {
			rep.State, rep.Detail = messages.StateDegraded, "shutting down: not accepting new work"
		}
		admin.Respond(ctx, rep)
	case *messages.StatsQuery:
		admin.Respond(ctx, &messages.StatsReport{Actor: a.name, Stats: &messages.HTTPStats{
			Addr:     a.addr,
			Requests: a.counters.Requests.Load(),
			InFlight: a.counters.InFlight.Load(),
			Rejected: a.counters.Rejected.Load(),
		}})
	case *messages.ApplyConfig:
		// max_body_bytes and the debug switches are read per request from
		// the live configuration; nothing to hold here.
		admin.Respond(ctx, &messages.ConfigApplied{Actor: a.name})
	case *messages.Ping:
		admin.Respond(ctx, &messages.Pong{Actor: a.name, Seq: msg.Seq})
	default:
		a.log.Debug().Type("type", msg).Msg("unknown message")
	}
}
