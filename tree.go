package deer

import (
	"context"
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/batch"
	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/cache"
	"github.com/deer-runtime/deer/actors/limiter"
	"github.com/deer-runtime/deer/actors/metrics"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/actors/router"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// The supervision tree (docs/architecture.md):
//
//	deer
//	├── executor       router (which supervises worker/1…worker/N)
//	├── upstreams      pool/U, limiter/U, breaker/U/E, batch/U for every upstream U
//	├── cache          cache/l1, cache/l2, cache/l3
//	└── observability  metrics, http (deerd only)
//
// Every supervisor, the router included, has its own Strategy instance:
// restart intensity is counted per child of one parent.
func (rt *Runtime) spawnTree(policy supervisor.Policy, extra []supervisor.ChildSpec) (*actor.PID, []string) {
	newStrategy := func() *supervisor.Strategy {
		s := supervisor.NewStrategy(policy, rt.clock, rt.reg, rt.set, rt.log)
		rt.strategies = append(rt.strategies, s)
		return s
	}
	// Every actor's mailbox runs on the runtime's goroutine pool.
	pooled := func(specs []supervisor.ChildSpec) []supervisor.ChildSpec {
		for _, s := range specs {
			s.Props.Configure(actor.WithDispatcher(rt.dispatcher))
		}
		return specs
	}
	group := func(name string, children func() []supervisor.ChildSpec) supervisor.ChildSpec {
		props := supervisor.GroupProps(name, func() []supervisor.ChildSpec { return pooled(children()) }, newStrategy(), rt.reg, rt.log)
		return supervisor.ChildSpec{Name: name, Props: props.Configure(actor.WithDispatcher(rt.dispatcher))}
	}
	routerStrategy := newStrategy()
	groups := []supervisor.ChildSpec{
		group("executor", func() []supervisor.ChildSpec {
			return []supervisor.ChildSpec{{Name: "router", Props: router.Props(router.Deps{
				Name: "router", Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Registry: rt.reg, Strategy: routerStrategy, Dispatcher: rt.dispatcher, Board: rt.board,
				Reservoirs: rt.reservoirs, Lanes: rt.lanes,
			})}}
		}),
		group("upstreams", rt.upstreamActors),
		group("cache", rt.cacheActors),
		group("observability", func() []supervisor.ChildSpec {
			specs := []supervisor.ChildSpec{{Name: "metrics", Props: metrics.Props(metrics.Deps{
				Name: "metrics", Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Snapshot: func(ctx context.Context) any { return rt.Metrics(ctx) },
			})}}
			return append(specs, extra...)
		}),
	}
	rootProps := supervisor.GroupProps("deer", func() []supervisor.ChildSpec { return groups }, newStrategy(), rt.reg, rt.log)
	pid, err := rt.system.Root.SpawnNamed(rootProps.Configure(actor.WithDispatcher(rt.dispatcher)), "deer")
	if err != nil {
		panic(err) // a fresh actor system cannot already hold the name
	}
	rt.reg.Register("deer", "", pid)
	// The names Start waits for: groups spawn their children asynchronously.
	expected := []string{"deer", "router"}
	for _, g := range groups {
		expected = append(expected, g.Name)
	}
	for _, specs := range [][]supervisor.ChildSpec{rt.upstreamActors(), rt.cacheActors(), extra} {
		for _, c := range specs {
			expected = append(expected, c.Name)
		}
	}
	for i := 1; i <= rt.live.Load().ParallelExecution.MaxWorkers; i++ {
		expected = append(expected, fmt.Sprintf("worker/%d", i))
	}
	return pid, append(expected, "metrics")
}

// upstreamActors are the per-upstream actors. Upstreams cannot change while
// running, so the startup configuration's set is the set.
func (rt *Runtime) upstreamActors() []supervisor.ChildSpec {
	cfg := rt.live.Load()
	var specs []supervisor.ChildSpec
	for _, name := range sortedKeys(cfg.Upstreams) {
		up := cfg.Upstreams[name]
		specs = append(specs,
			supervisor.ChildSpec{Name: "pool/" + name, Props: pool.Props(pool.Deps{
				Name: "pool/" + name, Upstream: name, Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				RoundTripper: rt.rtrip, Published: rt.poolStats[name], Lane: rt.lanes[name],
			})},
			supervisor.ChildSpec{Name: "limiter/" + name, Props: limiter.Props(limiter.Deps{
				Name: "limiter/" + name, Upstream: name, Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Reservoir: rt.reservoirs[name],
			})},
			supervisor.ChildSpec{Name: "batch/" + name, Props: batch.Props(batch.Deps{
				Name: "batch/" + name, Upstream: name, Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
			})},
		)
		eps := up.EndpointURLs()
		for i, ep := range eps {
			bname := breaker.ActorName(name, eps, i)
			specs = append(specs, supervisor.ChildSpec{Name: bname, Props: breaker.Props(breaker.Deps{
				Name: bname, Upstream: name, Endpoint: ep, Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Board: rt.board,
			})})
		}
	}
	return specs
}

func (rt *Runtime) cacheActors() []supervisor.ChildSpec {
	next := func(name string) func() *actor.PID {
		return func() *actor.PID {
			pid, _ := rt.reg.PID(name)
			return pid
		}
	}
	tier := func(t string, below func() *actor.PID) supervisor.ChildSpec {
		return supervisor.ChildSpec{Name: "cache/" + t, Props: cache.Props(cache.Deps{
			Tier: t, Name: "cache/" + t, Live: rt.live, Clock: rt.clock,
			Log: rt.log.With().Str("actor", "cache/"+t).Logger(), Metrics: rt.set, Next: below,
		})}
	}
	return []supervisor.ChildSpec{
		tier(messages.TierL1, next("cache/l2")),
		tier(messages.TierL2, next("cache/l3")),
		tier(messages.TierL3, nil),
	}
}

func sortedKeys(m map[string]conf.Upstream) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
