// Package deer is the embedding API of the deer runtime: Start builds the
// actor system and its supervision tree, the Runtime answers health, metrics
// and configuration questions by asking the actors, and Stop takes it down.
// deerd is this API plus package httpapi.
package deer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/cache"
	"github.com/deer-runtime/deer/actors/limiter"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/dispatch"
	"github.com/deer-runtime/deer/internal/faults"
	"github.com/deer-runtime/deer/internal/logging"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/internal/reply"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// applyTimeout bounds how long a configuration change waits for the actors
// to acknowledge it (SPEC: applied live, within a second).
const applyTimeout = time.Second

// Runtime is a running deer actor system.
type Runtime struct {
	system   *actor.ActorSystem
	root     *actor.PID
	reg      *supervisor.Registry
	live     *conf.Live
	startup  *conf.Config // what POST /config/reset returns to
	clock    clock.Clock
	log      zerolog.Logger
	set      *vm.Set
	setLevel func(debug bool)
	started  time.Time

	strategies []*supervisor.Strategy
	rtrip      http.RoundTripper
	faults     *faults.Set // injected faults (SPEC §9), checked by every actor's receive
	// receive wraps every component actor's and worker's receive: the
	// faults, then WithReceive's wrap when given.
	receive    func(name string, next actor.ReceiverFunc) actor.ReceiverFunc
	builtins   []*sim.Hosted // simulators served for builtin upstreams
	dispatcher *dispatch.Pool
	boxes      *reply.Boxes
	board      *breaker.Board // the breakers' states, read by workers
	cacheFront *cache.Front   // cache/l1's store, read by the router at admission
	// keyless maps the upstreams whose api_key_env was unset at start to
	// that variable: their tasks are refused at submission. Fixed at start.
	keyless map[string]string
	// reservoirs hold each upstream's tokens granted ahead of demand, taken
	// by workers without a message; fixed at start like the upstreams.
	reservoirs map[string]*limiter.Reservoir
	lanes      map[string]*pool.Lane
	poolStats  map[string]*pool.Published // each pool's last published numbers
	models     *discovery                 // the model catalog (models.go)
	// redis is the cluster's shared Redis (cluster.redis_url), nil on a
	// single node. It connects lazily and reconnects by itself.
	redis *redis.Client
	// node is this node's view of the cluster: its id and how many nodes
	// are alive (one, on a single node).
	node     cluster.View
	members  *cluster.Members  // the heartbeat's view; nil on a single node
	breakers *cluster.Breakers // breaker changes to and from the other nodes; nil on a single node
	// shared publishes tasks to the other nodes and answers for theirs;
	// nil on a single node (sharedtasks.go).
	shared   *sharedTasks
	configMu sync.Mutex // one configuration change at a time
	stopping atomic.Bool
	stopOnce sync.Once
}

// Option customises Start.
type Option func(*options)

type options struct {
	clock    clock.Clock
	log      *zerolog.Logger
	setLevel func(debug bool)
	set      *vm.Set
	extra    []supervisor.ChildSpec
	policy   *supervisor.Policy
	rtrip    http.RoundTripper
	receive  func(name string, next actor.ReceiverFunc) actor.ReceiverFunc
	// faultHook installs the fault-injection hook whatever the
	// configuration says (WithFaultInjection).
	faultHook bool
}

// WithClock makes the runtime read time from c (tests use a fake clock).
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sends the runtime's logs to log. setLevel, when not nil, is
// called with debug_mode whenever it changes, so the level follows it live.
func WithLogger(log zerolog.Logger, setLevel func(debug bool)) Option {
	return func(o *options) { o.log, o.setLevel = &log, setLevel }
}

// WithMetricsSet registers the runtime's Prometheus metrics in set instead
// of a new one.
func WithMetricsSet(set *vm.Set) Option { return func(o *options) { o.set = set } }

// WithActor adds an actor to the observability group under name (deerd adds
// its `http` actor this way).
func WithActor(name string, props *actor.Props) Option {
	return func(o *options) { o.extra = append(o.extra, supervisor.ChildSpec{Name: name, Props: props}) }
}

// WithRoundTripper makes every upstream's calls go through rt instead of the
// pools' own transports (an instrumented or in-memory transport; the
// benchmarks use a no-op one). Lease accounting and everything above it is
// unchanged.
func WithRoundTripper(rt http.RoundTripper) Option { return func(o *options) { o.rtrip = rt } }

// WithReceive wraps the receive of every component actor (the children of
// the supervision groups: pool/U, limiter/U, breaker/U/E, batch/U, cache/*,
// router, metrics, http) and of every worker/N in wrap, given the actor's
// SPEC name. It runs inside the injected faults (see InjectFault): a
// message a fault drops never reaches it.
func WithReceive(wrap func(name string, next actor.ReceiverFunc) actor.ReceiverFunc) Option {
	return func(o *options) { o.receive = wrap }
}

// WithFaultInjection makes InjectFault work whatever the configuration
// says. Without it, the fault hook is on every actor only when the
// configuration deer starts with has debug_mode or server.fault_injection:
// it costs allocations on every message, so it is not there by default.
func WithFaultInjection() Option { return func(o *options) { o.faultHook = true } }

// WithSupervisionPolicy overrides the restart policy of every supervisor.
func WithSupervisionPolicy(p supervisor.Policy) Option {
	return func(o *options) { o.policy = &p }
}

// Start validates cfg, builds the actor system and the supervision tree, and
// returns once every actor answers. cfg becomes the startup configuration
// that POST /config/reset returns to; the caller must not modify it after.
// A builtin upstream whose base_url has port 0 is served on an ephemeral
// port, and the runtime's configuration (a copy: cfg is left as it is)
// carries the real address: Config and StartupConfig show it.
func Start(ctx context.Context, cfg *conf.Config, opts ...Option) (*Runtime, error) {
	if cfg == nil {
		cfg = conf.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		l, sw := logging.New(nil, cfg.DebugMode)
		o.log = &l
		o.setLevel = func(debug bool) { sw.SetLevel(logging.LevelFor(debug)) }
	}
	if o.set == nil {
		o.set = vm.NewSet()
	}
	policy := supervisor.DefaultPolicy()
	if o.policy != nil {
		policy = *o.policy
	}

	// The simulators first: a port 0 becomes a real one in the
	// configuration every actor reads.
	cfg, builtins, err := hostBuiltins(cfg, *o.log)
	if err != nil {
		return nil, err
	}

	rt := &Runtime{
		reg:      supervisor.NewRegistry(),
		live:     conf.NewLive(cfg),
		startup:  cfg,
		clock:    o.clock,
		log:      *o.log,
		set:      o.set,
		setLevel: o.setLevel,
		started:  o.clock.Now(),
		rtrip:    o.rtrip,
		faults:   faults.New(nil),
		// Mailbox runs reuse goroutines; idle ones go after a while.
		dispatcher: dispatch.New(300, 10*time.Second),
		board:      breaker.NewBoard(),
		cacheFront: cache.NewFront(),
	}
	rt.models = newDiscovery(rt)
	rt.node = cluster.Fixed{ID: cluster.NewNodeID(), N: 1}
	if url := cfg.Cluster.RedisURL; url != "" {
		if rt.redis, err = cluster.Dial(url); err != nil {
			closeBuiltins(context.Background(), builtins, *o.log)
			return nil, err
		}
		rt.members = cluster.NewMembers(rt.node.NodeID())
		rt.node = rt.members
		// Each heartbeat reports the tokens this node's limiters leased, the
		// counters they count them in (deer_ratelimit_leased_total).
		leased := map[string]*vm.Counter{}
		for name := range cfg.Upstreams {
			leased[name] = rt.set.GetOrCreateCounter("deer_ratelimit_leased_total" + metricname.Labels("upstream", name))
		}
		rt.members.CountLeased(func() map[string]uint64 {
			out := make(map[string]uint64, len(leased))
			for name, c := range leased {
				out[name] = c.Get()
			}
			return out
		})
		rt.breakers = cluster.NewBreakers(rt.redis, rt.node.NodeID())
		rt.breakers.Start()
		members := rt.members
		rt.set.GetOrCreateGauge("deer_cluster_nodes_alive", func() float64 { return float64(members.Alive()) })
		rt.set.GetOrCreateGauge("deer_cluster_redis_up", func() float64 {
			if members.Up() {
				return 1
			}
			return 0
		})
		rt.shared = newSharedTasks(rt.redis, rt.members, rt.clock, rt.log, rt.set)
		rt.log.Info().Str("node", rt.node.NodeID()).Str("redis", cfg.Redacted().Cluster.RedisURL).
			Msg("cluster node: limits, breakers and tasks shared through redis")
	}
	// The fault hook is a receive middleware on every actor, and protoactor
	// then wraps each message in an envelope (3 allocations per task): it is
	// installed only when faults may be injected.
	if cfg.DebugMode || cfg.Server.FaultInjection || o.faultHook {
		rt.receive = rt.faults.Wrap
	}
	if user := o.receive; user != nil {
		rt.receive = user
		if o.faultHook || cfg.DebugMode || cfg.Server.FaultInjection {
			rt.receive = func(name string, next actor.ReceiverFunc) actor.ReceiverFunc {
				return rt.faults.Wrap(name, user(name, next))
			}
		}
	}
	rt.system = actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(logging.NewSlogHandler(rt.log.With().Str("component", "protoactor").Logger(), rt.libraryLogLevel))
		}),
		actor.WithDeadLetterRequestLogging(false),
	)
	rt.boxes = reply.NewBoxes(rt.system)
	rt.reservoirs = make(map[string]*limiter.Reservoir, len(cfg.Upstreams))
	rt.poolStats = make(map[string]*pool.Published, len(cfg.Upstreams))
	rt.lanes = make(map[string]*pool.Lane, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		rt.reservoirs[name] = &limiter.Reservoir{}
		rt.lanes[name] = &pool.Lane{}
		rt.poolStats[name] = &pool.Published{}
	}
	rt.countDeadLetters()
	rt.builtins = builtins
	rt.keyless = missingKeys(cfg, os.Getenv)
	warnMissingKeys(rt.log, rt.keyless)

	if rt.shared != nil {
		// Another node's DELETE of a task running here.
		rt.shared.listenCancels(func(id, tenant string) {
			if pid := rt.Router(); pid != nil {
				rt.system.Root.Send(pid, &messages.CancelTask{ID: id, Tenant: tenant})
			}
		})
	}
	var expected []string
	rt.root, expected = rt.spawnTree(policy, o.extra)
	if err := rt.waitReady(ctx, expected); err != nil {
		_ = rt.Stop(context.Background())
		return nil, err
	}
	rt.log.Info().Int("actors", len(rt.reg.Entries())).Int("upstreams", len(cfg.Upstreams)).Msg("deer runtime started")
	return rt, nil
}

// libraryLogLevel passes the actor library's routine info lines (dead
// letters, "recovering") only in debug mode; deer logs crashes itself.
func (rt *Runtime) libraryLogLevel() slog.Level {
	if rt.live.Load().DebugMode {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// countDeadLetters counts messages that reached no actor, instead of logging
// each one.
func (rt *Runtime) countDeadLetters() {
	counter := rt.set.GetOrCreateCounter("deer_dead_letters_total")
	rt.system.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			counter.Inc()
			if res, ok := dl.Message.(*messages.TaskResult); ok && res.Stream != nil {
				// Its caller gave up as it was answered: nobody will read
				// the stream, and closing it frees the connection and the
				// worker (and logs the task as client_closed).
				_ = res.Stream.Close()
			}
		}
	})
}

// waitReady returns once every expected actor is registered and every
// registered actor answers a ping.
func (rt *Runtime) waitReady(ctx context.Context, expected []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		// Registration first: Ready pings only the actors registered when
		// it is called.
		ok, why := true, ""
		for _, name := range expected {
			if _, registered := rt.reg.PID(name); !registered {
				ok, why = false, name+" is not registered"
				break
			}
		}
		if ok {
			ok, why = rt.Ready(ctx)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deer: actors did not start: %s", why)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Stop drains the tasks (no new ones are accepted; queued and running ones
// finish, or are answered shutting_down at ctx's deadline), then stops the
// supervision tree and the actor system. It returns when the actors have
// stopped or ctx ends. It logs the drain's outcome, once: after a Drain of
// the caller's, its own drain reports that drain's (the router answers a
// drain in progress or done with the counts of the one drain).
func (rt *Runtime) Stop(ctx context.Context) error {
	var err error
	rt.stopOnce.Do(func() {
		rt.stopping.Store(true)
		rt.models.stop() // its fetches are tasks: they must not hold up the drain
		if rt.Router() != nil {
			if d, derr := rt.Drain(ctx); derr != nil {
				rt.log.Warn().Err(derr).Msg("draining tasks did not finish")
			} else {
				rt.log.Info().Int("finished", d.Finished).Int("abandoned", d.Abandoned).Msg("tasks drained")
			}
		}
		for _, s := range rt.strategies {
			s.Stop()
		}
		if rt.root != nil {
			done := make(chan error, 1)
			go func() { done <- rt.system.Root.StopFuture(rt.root).Wait() }()
			select {
			case err = <-done:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		rt.system.Shutdown()
		rt.dispatcher.Close()
		closeBuiltins(context.WithoutCancel(ctx), rt.builtins, rt.log)
		if rt.breakers != nil {
			rt.breakers.Close()
		}
		if rt.shared != nil {
			rt.shared.close(context.WithoutCancel(ctx)) // bounded by the writes' own timeouts
		}
		if rt.redis != nil {
			_ = rt.redis.Close()
		}
	})
	return err
}

// Registry is the supervision registry: SPEC actor names, PIDs and states.
func (rt *Runtime) Registry() *supervisor.Registry { return rt.reg }

// System is the underlying actor system.
func (rt *Runtime) System() *actor.ActorSystem { return rt.system }

// MetricsSet is where the runtime's Prometheus metrics live.
func (rt *Runtime) MetricsSet() *vm.Set { return rt.set }

// Router is the WorkerRouter's PID.
func (rt *Runtime) Router() *actor.PID {
	pid, _ := rt.reg.PID("router")
	return pid
}

// Config returns the configuration in force. Do not modify it.
func (rt *Runtime) Config() *conf.Config { return rt.live.Load() }

// StartupConfig returns the configuration the runtime started with.
func (rt *Runtime) StartupConfig() *conf.Config { return rt.startup }

// UpdateConfig deep-merges a partial JSON configuration over the one in
// force, validates the result as a whole and applies it to every actor. On
// any error nothing changes.
func (rt *Runtime) UpdateConfig(ctx context.Context, patch []byte) (*conf.Config, error) {
	rt.configMu.Lock()
	defer rt.configMu.Unlock()
	next, err := rt.live.Load().Patch(patch)
	if err != nil {
		return nil, err
	}
	return next, rt.apply(ctx, next)
}

// ResetConfig returns to the startup configuration, or with builtin to the
// built-in defaults. Settings that need a restart (listen address, admin
// token, L3 path, upstreams) stay as they are running.
func (rt *Runtime) ResetConfig(ctx context.Context, builtin bool) (*conf.Config, error) {
	rt.configMu.Lock()
	defer rt.configMu.Unlock()
	target := rt.startup.Clone()
	if builtin {
		target = conf.Default()
		cur := rt.live.Load()
		target.Server.Addr, target.Server.AdminToken = cur.Server.Addr, cur.Server.AdminToken
		target.Cache.L3Path = cur.Cache.L3Path
		target.Upstreams = cur.Clone().Upstreams
		target.DefaultUpstream = cur.DefaultUpstream
	}
	if err := target.Validate(); err != nil {
		return nil, err
	}
	return target, rt.apply(ctx, target)
}

// ErrNotApplied is returned (wrapped) when some actors did not acknowledge
// a configuration change in time. The change is in force: they read it when
// they next start, and the ones that are slow apply it when they get to it.
var ErrNotApplied = errors.New("not acknowledged by every actor in time")

// apply makes next the configuration in force and hands it to every actor,
// waiting up to applyTimeout for their acknowledgements.
func (rt *Runtime) apply(ctx context.Context, next *conf.Config) error {
	rt.live.Store(next)
	if rt.setLevel != nil {
		rt.setLevel(next.DebugMode)
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	msg := &messages.ApplyConfig{Config: next}
	// The router first: it retires and spawns workers, which the broadcast
	// below must not count as late.
	if pid := rt.Router(); pid != nil {
		_, _ = rt.system.Root.RequestFuture(pid, msg, applyTimeout).Result()
	}
	var late []string
	// The whole second goes to the acknowledgements (not the shorter bound
	// of /health): an actor busy for a moment still counts as on time.
	for _, a := range rt.askWithin(ctx, applyTimeout, msg) {
		if a.entry.State != supervisor.Running {
			continue // it reads the live configuration when it starts again
		}
		if ack, ok := a.replies[0].(*messages.ConfigApplied); !ok {
			if now, still := rt.reg.Get(a.entry.Name); !still || now.PID.Id != a.entry.PID.Id {
				continue // retired or replaced meanwhile: not late
			}
			late = append(late, a.entry.Name)
		} else if ack.Err != "" {
			late = append(late, a.entry.Name+": "+ack.Err)
		}
	}
	rt.log.Info().Strs("late", late).Msg("configuration applied")
	if len(late) > 0 {
		return fmt.Errorf("configuration %w: %v", ErrNotApplied, late)
	}
	return nil
}

// History returns the retained /metrics snapshots, oldest first.
func (rt *Runtime) History(ctx context.Context) ([]messages.Snapshot, error) {
	pid, ok := rt.reg.PID("metrics")
	if !ok {
		return nil, errors.New("metrics actor not running")
	}
	res, err := rt.system.Root.RequestFuture(pid, &messages.HistoryQuery{}, askTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("metrics actor: %w", err)
	}
	rep, ok := res.(*messages.HistoryReport)
	if !ok {
		return nil, fmt.Errorf("metrics actor answered %T", res)
	}
	return rep.Snapshots, nil
}
