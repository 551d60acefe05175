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

// The shared actor test helpers, under the names this package's tests use.
const wait = actortest.Wait

var (
	newSystem  = actortest.NewSystem
	spawn      = actortest.Spawn
	probe      = actortest.Probe
	eventually = actortest.Eventually
	drain      = actortest.Drain
	panicky    = actortest.Panicky
)

type panicNow = actortest.PanicNow

func ask[T any](t *testing.T, system *actor.ActorSystem, pid *actor.PID, msg any) T {
	t.Helper()
	return actortest.Ask[T](t, system, pid, msg)
}

func recv[T any](t *testing.T, ch chan any) T {
	t.Helper()
	return actortest.Recv[T](t, ch)
}

func statsOf(t *testing.T, system *actor.ActorSystem, pid *actor.PID) *messages.BatchStats {
	t.Helper()
	return ask[*messages.StatsReport](t, system, pid, &messages.StatsQuery{}).Stats.(*messages.BatchStats)
}
