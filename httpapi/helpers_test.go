package httpapi_test

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/messages"
)

// answerAdmin gives a test actor the admin answers every deer actor gives.
func answerAdmin(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.StatusQuery:
		ctx.Respond(&messages.StatusReport{Actor: "crasher", State: messages.StateHealthy})
	case *messages.StatsQuery:
		ctx.Respond(&messages.StatsReport{Actor: "crasher"})
	case *messages.ApplyConfig:
		ctx.Respond(&messages.ConfigApplied{Actor: "crasher"})
	case *messages.Ping:
		ctx.Respond(&messages.Pong{Actor: "crasher", Seq: m.Seq})
	}
}
