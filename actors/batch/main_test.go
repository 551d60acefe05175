package batch

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/messages"
)

// TestMain fails the package when goroutines outlive its tests (goleak).
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func statsOf(t *testing.T, system *actor.ActorSystem, pid *actor.PID) *messages.BatchStats {
	t.Helper()
	return actortest.Ask[*messages.StatsReport](t, system, pid, &messages.StatsQuery{}).Stats.(*messages.BatchStats)
}
