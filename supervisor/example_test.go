package supervisor_test

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

type echo struct{}

func (echo) Receive(ctx actor.Context) {
	if ping, ok := ctx.Message().(*messages.Ping); ok {
		ctx.Respond(&messages.Pong{Actor: "cache/l1", Seq: ping.Seq})
	}
}

func ExampleSpawnRoot() {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	reg, set, log := supervisor.NewRegistry(), metrics.NewSet(), zerolog.Nop()
	strategy := func() *supervisor.Strategy {
		return supervisor.NewStrategy(supervisor.DefaultPolicy(), clock.Real{}, reg, set, log)
	}

	caches := supervisor.GroupProps("caches", func() []supervisor.ChildSpec {
		return []supervisor.ChildSpec{{Name: "cache/l1", Props: actor.PropsFromProducer(func() actor.Actor { return echo{} })}}
	}, strategy(), reg, log)
	root, err := supervisor.SpawnRoot(system.Root, "supervisor", func() []supervisor.ChildSpec {
		return []supervisor.ChildSpec{{Name: "caches", Props: caches}}
	}, strategy(), reg, log)
	if err != nil {
		panic(err)
	}
	defer func() { _ = system.Root.StopFuture(root).Wait() }() // cancels pending restarts on the way down

	// Children are registered as their group starts; wait for the cache.
	deadline := time.Now().Add(5 * time.Second)
	pid, ok := reg.PID("cache/l1")
	for ; !ok && time.Now().Before(deadline); pid, ok = reg.PID("cache/l1") {
		time.Sleep(time.Millisecond)
	}
	res, err := system.Root.RequestFuture(pid, &messages.Ping{Seq: 1}, time.Second).Result()
	if err != nil {
		panic(err)
	}
	fmt.Println(res.(*messages.Pong).Actor)
	for _, e := range reg.Entries() {
		fmt.Printf("%s under %q: %s\n", e.Name, e.Group, e.State)
	}
	// Output:
	// cache/l1
	// cache/l1 under "caches": running
	// caches under "supervisor": running
	// supervisor under "": running
}
