package deer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/batch"
	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/cache"
	"github.com/deer-runtime/deer/actors/limiter"
	"github.com/deer-runtime/deer/actors/member"
	"github.com/deer-runtime/deer/actors/metrics"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/actors/router"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// rootName is the root supervisor's name; its children are the groups.
const rootName = "deer"

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
	// Every actor's mailbox runs on the runtime's goroutine pool, and its
	// receive goes through rt.receive (fault injection, WithReceive).
	// Configuring props appends, so each props value goes through once.
	pooled := func(specs []supervisor.ChildSpec) []supervisor.ChildSpec {
		for _, s := range specs {
			s.Props.Configure(actor.WithDispatcher(rt.dispatcher))
			if wrap := rt.receive; wrap != nil {
				name := s.Name
				s.Props.Configure(actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
					return wrap(name, next)
				}))
			}
		}
		return specs
	}
	group := func(name string, children func() []supervisor.ChildSpec) supervisor.ChildSpec {
		props := supervisor.GroupProps(name, children, newStrategy(), rt.reg, rt.log)
		return supervisor.ChildSpec{Name: name, Props: props.Configure(actor.WithDispatcher(rt.dispatcher))}
	}
	// extra's props are reused by every start of their group: configured
	// here, once.
	extra = pooled(extra)
	routerStrategy := newStrategy()
	groups := []supervisor.ChildSpec{
		group("executor", func() []supervisor.ChildSpec {
			return pooled([]supervisor.ChildSpec{{Name: "router", Props: router.Props(router.Deps{
				Name: "router", Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Registry: rt.reg, Strategy: routerStrategy, Dispatcher: rt.dispatcher, Board: rt.board,
				Reservoirs: rt.reservoirs, Lanes: rt.lanes, Front: rt.cacheFront, Receive: rt.receive,
				Publish: rt.publisher(),
			})}})
		}),
		group("upstreams", func() []supervisor.ChildSpec { return pooled(rt.upstreamActors()) }),
		group("cache", func() []supervisor.ChildSpec { return pooled(rt.cacheActors()) }),
		group("observability", func() []supervisor.ChildSpec {
			specs := pooled(append([]supervisor.ChildSpec{{Name: "metrics", Props: metrics.Props(metrics.Deps{
				Name: "metrics", Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Snapshot: func(ctx context.Context) any { return rt.Metrics(ctx) },
			})}}, rt.clusterActors()...))
			return append(specs, extra...)
		}),
	}
	rootProps := supervisor.GroupProps(rootName, func() []supervisor.ChildSpec { return groups }, newStrategy(), rt.reg, rt.log)
	pid, err := rt.system.Root.SpawnNamed(rootProps.Configure(actor.WithDispatcher(rt.dispatcher)), rootName)
	if err != nil {
		panic(err) // a fresh actor system cannot already hold the name
	}
	rt.reg.Register(rootName, "", pid)
	// The names Start waits for: groups spawn their children asynchronously.
	expected := []string{rootName, "router"}
	for _, g := range groups {
		expected = append(expected, g.Name)
	}
	for _, specs := range [][]supervisor.ChildSpec{rt.upstreamActors(), rt.cacheActors(), rt.clusterActors(), extra} {
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
				KeyMissing: rt.keyless[name],
			})},
			supervisor.ChildSpec{Name: "limiter/" + name, Props: limiter.Props(limiter.Deps{
				Name: "limiter/" + name, Upstream: name, Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Reservoir: rt.reservoirs[name], Shared: rt.sharedLimit(),
			})},
			supervisor.ChildSpec{Name: "batch/" + name, Props: batch.Props(batch.Deps{
				Name: "batch/" + name, Upstream: name, Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Sink: func() *actor.PID { pid, _ := rt.reg.PID("router"); return pid },
			})},
		)
		eps := up.EndpointURLs()
		for i, ep := range eps {
			bname := breaker.ActorName(name, eps, i)
			specs = append(specs, supervisor.ChildSpec{Name: bname, Props: breaker.Props(breaker.Deps{
				Name: bname, Upstream: name, Endpoint: ep, Live: rt.live, Clock: rt.clock, Log: rt.log, Metrics: rt.set,
				Board: rt.board, Shared: rt.breakers,
			})})
		}
	}
	return specs
}

// clusterActors is the heartbeat actor, "cluster", when cluster.redis_url
// is set; none on a single node.
func (rt *Runtime) clusterActors() []supervisor.ChildSpec {
	if rt.members == nil {
		return nil
	}
	return []supervisor.ChildSpec{{Name: "cluster", Props: member.Props(member.Deps{
		Name: "cluster", Members: rt.members, Redis: rt.redis, Clock: rt.clock, Log: rt.log,
	})}}
}

// publisher is the router's view of the shared tasks; nil (no interface
// holding a nil pointer) on a single node.
func (rt *Runtime) publisher() router.Publisher {
	if rt.shared == nil {
		return nil
	}
	return rt.shared
}

// sharedLimit makes every limiter lease from the cluster's budget when
// cluster.redis_url is set; nil on a single node.
func (rt *Runtime) sharedLimit() *limiter.Shared {
	if rt.redis == nil {
		return nil
	}
	return &limiter.Shared{Redis: rt.redis, Node: rt.node}
}

// cacheActors are the three tiers. L1 writes the Front the router reads;
// a lookup goes to L2, which hands its misses to L3; L2 and L3 promote
// their hits into L1. Neighbours are looked up by name on every use, so a
// restarted tier is found.
func (rt *Runtime) cacheActors() []supervisor.ChildSpec {
	byName := func(name string) func() *actor.PID {
		return func() *actor.PID {
			pid, _ := rt.reg.PID(name)
			return pid
		}
	}
	tier := func(d cache.Deps) supervisor.ChildSpec {
		name := "cache/" + d.Tier
		d.Name, d.Live, d.Clock, d.Metrics = name, rt.live, rt.clock, rt.set
		d.Log = rt.log.With().Str("actor", name).Logger()
		return supervisor.ChildSpec{Name: name, Props: cache.Props(d)}
	}
	return []supervisor.ChildSpec{
		tier(cache.Deps{Tier: messages.TierL1, Front: rt.cacheFront, Next: byName("cache/l2")}),
		tier(cache.Deps{Tier: messages.TierL2, Next: byName("cache/l3"), Top: byName("cache/l1")}),
		// With cache.l3_backend = "redis", L3 lives in the cluster's Redis.
		tier(cache.Deps{Tier: messages.TierL3, Top: byName("cache/l1"), Redis: rt.redis}),
	}
}

// hostBuiltins serves the simulator (package internal/sim) at the base_url
// of every upstream with builtin = true, before any actor calls it. A taken
// port is an error naming the upstream and the address (SPEC §3: two deerd
// processes must not fight over one simulator port), and nothing is left
// serving.
//
// Port 0 binds an ephemeral port (the default in conf/deer.toml: the
// simulator is internal, so a second deerd on the machine just works). The
// configuration returned then carries the real address in that base_url:
// it is the one the runtime uses, so the pool dials the right port, GET
// /config shows it and POST /config/reset keeps it. cfg itself is never
// modified; without a port 0 it is returned as it is.
func hostBuiltins(cfg *conf.Config, log zerolog.Logger) (*conf.Config, []*sim.Hosted, error) {
	var hosted []*sim.Hosted
	fail := func(err error) (*conf.Config, []*sim.Hosted, error) {
		closeBuiltins(context.Background(), hosted, log)
		return nil, nil, err
	}
	effective := cfg
	for _, name := range sortedKeys(cfg.Upstreams) {
		up := cfg.Upstreams[name]
		if !up.Builtin {
			continue
		}
		u, err := url.Parse(up.BaseURL)
		if err != nil {
			return fail(fmt.Errorf("upstreams.%s.base_url: %w", name, err))
		}
		opts := []sim.Option{sim.WithLogger(log.With().Str("component", "sim/"+name).Logger())}
		if len(up.Models) > 0 {
			opts = append(opts, sim.WithModels(up.Models...))
		}
		h, err := sim.Host(u.Host, sim.DefaultKnobs(), opts...)
		if err != nil {
			return fail(fmt.Errorf("upstreams.%s.builtin: cannot serve the simulator: %w", name, err))
		}
		hosted = append(hosted, h)
		if u.Port() == "0" {
			if effective == cfg {
				effective = cfg.Clone()
			}
			u.Host = h.Addr()
			up.BaseURL = u.String()
			effective.Upstreams[name] = up
		}
		log.Info().Str("upstream", name).Str("addr", h.Addr()).Str("base_url", up.BaseURL).
			Msg("serving the built-in simulator")
	}
	return effective, hosted, nil
}

// closeBuiltins stops the simulators, giving each at most 5 s.
func closeBuiltins(ctx context.Context, hosted []*sim.Hosted, log zerolog.Logger) {
	var errs []error
	for _, h := range hosted {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		errs = append(errs, h.Close(cctx))
		cancel()
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn().Err(err).Msg("built-in simulator did not stop cleanly")
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
