// Package admin answers the questions every deer actor answers: its status
// for /health, its numbers for /metrics, a new configuration to apply, and
// a ping. An actor builds its Answers once (New, or a literal when Apply
// can fail) and lets Handle take those messages.
package admin

import (
	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// Answers are one actor's replies to the admin messages. The functions run
// on the actor's goroutine, like the rest of its Receive.
type Answers struct {
	Name   string                        // SPEC §6 name
	Status func() *messages.StatusReport // for *messages.StatusQuery
	Stats  func() any                    // one of the messages.*Stats, for *messages.StatsQuery
	// Apply applies the settings the actor owns; an error goes back in
	// ConfigApplied.Err.
	Apply func(ctx actor.Context, cfg *conf.Config) error
}

// New builds the Answers of an actor whose stats are a T and whose Apply
// cannot fail, from its own methods: a.status, a.stats, a.apply.
func New[T any](name string, status func() *messages.StatusReport, stats func() T, apply func(actor.Context, *conf.Config)) *Answers {
	return &Answers{
		Name:   name,
		Status: status,
		Stats:  func() any { return stats() },
		Apply:  func(ctx actor.Context, cfg *conf.Config) error { apply(ctx, cfg); return nil },
	}
}

// Handle answers ctx's message when it is an admin message and reports
// whether it was one.
func (a *Answers) Handle(ctx actor.Context) bool {
	switch msg := ctx.Message().(type) {
	case *messages.StatusQuery:
		Respond(ctx, a.Status())
	case *messages.StatsQuery:
		Respond(ctx, &messages.StatsReport{Actor: a.Name, Stats: a.Stats()})
	case *messages.ApplyConfig:
		reply := &messages.ConfigApplied{Actor: a.Name}
		if msg.Config == nil {
			reply.Err = "no configuration"
		} else if err := a.Apply(ctx, msg.Config); err != nil {
			reply.Err = err.Error()
		}
		Respond(ctx, reply)
	case *messages.Ping:
		Respond(ctx, &messages.Pong{Actor: a.Name, Seq: msg.Seq})
	default:
		return false
	}
	return true
}

// Respond answers the sender, if there is one: an answer to a plain Send
// would be a dead letter.
func Respond(ctx actor.Context, reply any) {
	if ctx.Sender() != nil {
		ctx.Respond(reply)
	}
}

// ReplyTo is where an answer to a request carrying replyTo goes: there,
// or to the sender when replyTo is nil (nil again for a plain Send).
func ReplyTo(ctx actor.Context, replyTo *actor.PID) *actor.PID {
	if replyTo != nil {
		return replyTo
	}
	return ctx.Sender()
}

// Defaults fills in what a component's Deps may leave out (tests and
// embedders do): the wall clock, a private metrics set, and the built-in
// configuration.
func Defaults(clk *clock.Clock, set **metrics.Set, live **conf.Live) {
	if *clk == nil {
		*clk = clock.Real{}
	}
	if *set == nil {
		*set = metrics.NewSet()
	}
	if *live == nil {
		*live = conf.NewLive(conf.Default())
	}
}
