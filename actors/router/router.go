package router

import (
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/limiter"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// Deps is what the router needs from its environment.
type Deps struct {
	Name     string // "router"
	Live     *conf.Live
	Clock    clock.Clock
	Log      zerolog.Logger
	Metrics  *metrics.Set
	Registry *supervisor.Registry
	// Strategy supervises the workers (the router is their parent).
	Strategy *supervisor.Strategy
	// Dispatcher runs the workers' mailboxes; nil means protoactor's default.
	Dispatcher actor.Dispatcher
	// Board is the breakers' shared view, read by workers on every attempt;
	// nil leaves breakers off the task path.
	Board *breaker.Board
	// Reservoirs are the limiters' tokens granted ahead of demand, per
	// upstream; a worker takes one without a message when there is one.
	Reservoirs map[string]*limiter.Reservoir
	// Lanes are the pools' connection leases lent ahead of demand, per
	// upstream; a worker takes one without a message when there is one.
	Lanes map[string]*pool.Lane
}

// maxPingTimeout bounds how long a health-check ping waits for its answer.
const maxPingTimeout = 5 * time.Second

// Router is the WorkerRouter actor.
type Router struct {
	d       Deps
	log     zerolog.Logger
	cfg     *conf.Config
	workers workerSet

	system *actor.ActorSystem
	self   *actor.PID

	healthTimer clock.Timer
	healthGen   uint64 // ignores ticks of a timer that was rescheduled
	pingSeq     uint64
	replaced    int64
	// stopping is set once the router itself stops or restarts: the library
	// then stops the workers, and those terminations must not be replaced.
	stopping bool

	watchdog    clock.Timer // fires at watchdogDue, the earliest overdue time of a running task
	watchdogDue time.Time

	workersGauge  *metrics.Gauge
	queueGauge    *metrics.Gauge
	replacedCount *metrics.Counter
	metrics       taskMetrics
	useSeq        uint64 // orders worker use, for least-recently-used dispatch

	*book // task state: survives a restart of the router
}

// book is the router's task state. It lives outside the actor instance so
// that a restarted router still knows every task it accepted: tasks that
// were running on its (stopped) workers go back to the queue.
type book struct {
	tasks       map[string]*entry
	queue       *queue
	results     map[string]finished // async and idempotent results, by task id
	idemRunning map[string]string   // idempotency key → running task id
	idemDone    map[string]finished // idempotency key → first result

	draining        bool
	drainWaiters    []*actor.PID
	drainTimer      clock.Timer
	drainedFinished int
	abandoned       int
}

func newBook(levels int) *book {
	return &book{
		tasks:       map[string]*entry{},
		queue:       newQueue(levels, agingInterval),
		results:     map[string]finished{},
		idemRunning: map[string]string{},
		idemDone:    map[string]finished{},
	}
}

var _ actor.Actor = (*Router)(nil)

// healthTick is the router's timer message for a round of worker pings.
type healthTick struct{ gen uint64 }

// Props builds the router; its children (the workers) are supervised by
// d.Strategy.
func Props(d Deps) *actor.Props {
	b := newBook(d.Live.Load().ParallelExecution.PriorityLevels)
	return actor.PropsFromProducer(func() actor.Actor { return newRouter(d, b) }, actor.WithSupervisor(d.Strategy))
}

func newRouter(d Deps, b *book) *Router {
	return &Router{
		book:          b,
		metrics:       newTaskMetrics(d.Metrics),
		d:             d,
		log:           d.Log.With().Str("actor", d.Name).Logger(),
		workersGauge:  d.Metrics.GetOrCreateGauge("deer_workers", nil),
		queueGauge:    d.Metrics.GetOrCreateGauge("deer_queue_size", nil),
		replacedCount: d.Metrics.GetOrCreateCounter("deer_workers_replaced_total"),
	}
}

// Receive handles one message.
func (r *Router) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.system, r.self = ctx.ActorSystem(), ctx.Self()
		r.cfg = r.d.Live.Load()
		// A restarted router starts with no children: the library stopped
		// them. Forget the previous life's workers before spawning anew.
		r.workers = workerSet{}
		for _, e := range r.d.Registry.Entries() {
			if e.Group == r.d.Name {
				r.d.Registry.Unregister(e.Name)
			}
		}
		r.resize(ctx, r.cfg.ParallelExecution.MaxWorkers)
		r.scheduleHealthCheck()
		r.recoverTasks(ctx)
	case *actor.Restarting:
		// Restarts pending from the workers' previous life must not hit the
		// new ones.
		r.stopping = true
		r.stopHealthCheck()
		r.d.Strategy.Reset()
	case *actor.Stopping:
		r.stopping = true
		r.stopHealthCheck()
		r.d.Strategy.Stop()
	case *actor.Stopped:
	case *actor.Terminated:
		r.workerTerminated(ctx, msg.Who)
	case *messages.SubmitTask:
		r.submit(ctx, msg)
	case *taskFinished:
		r.taskFinished(ctx, msg)
	case *workerIdle:
		r.workerIdle(ctx, msg)
	case *messages.CancelTask:
		res := r.cancel(ctx, msg.ID)
		admin.Respond(ctx, res)
	case *messages.TaskStatusQuery:
		admin.Respond(ctx, r.taskStatus(msg.ID))
	case *watchdogFired:
		r.watchdogFired(ctx, msg)
	case *messages.DeliveryFailed:
		r.deliveryFailed(ctx, msg)
	case *messages.DrainTasks:
		r.drain(ctx, msg)
	case *drainDeadline:
		r.drainExpired(ctx)
	case *healthTick:
		if msg.gen == r.healthGen {
			r.checkWorkers(ctx)
			r.prune()
			r.scheduleHealthCheck()
		}
	case *messages.ApplyConfig:
		r.apply(ctx, msg.Config)
		admin.Respond(ctx, &messages.ConfigApplied{Actor: r.d.Name})
	case *messages.StatusQuery:
		admin.Respond(ctx, r.status())
	case *messages.StatsQuery:
		admin.Respond(ctx, &messages.StatsReport{Actor: r.d.Name, Stats: r.stats()})
	case *messages.Ping:
		admin.Respond(ctx, &messages.Pong{Actor: r.d.Name, Seq: msg.Seq})
	default:
		r.log.Debug().Type("type", msg).Msg("unknown message")
	}
}

func (r *Router) apply(ctx actor.Context, cfg *conf.Config) {
	old := r.cfg
	r.cfg = cfg
	if n := cfg.ParallelExecution.MaxWorkers; n != len(r.workers.slots) {
		r.log.Info().Int("from", len(r.workers.slots)).Int("to", n).Msg("resizing worker set")
		r.resize(ctx, n)
	}
	if cfg.ParallelExecution.HealthCheckInterval != old.ParallelExecution.HealthCheckInterval {
		r.scheduleHealthCheck()
	}
	r.queue.resize(cfg.ParallelExecution.PriorityLevels)
	r.dispatch(ctx) // more workers may take queued tasks now
}

// recoverTasks puts back the tasks a previous incarnation had running: its
// workers were stopped with it.
func (r *Router) recoverTasks(ctx actor.Context) {
	for id, e := range r.tasks {
		if e.state == messages.TaskRunning {
			e.state, e.slot = messages.TaskQueued, nil
			r.queue.pushFront(&item{id: id, level: r.level(e.task), enqueued: e.accepted})
		}
	}
	r.dispatch(ctx)
}

// resize spawns or retires workers until there are n.
func (r *Router) resize(ctx actor.Context, n int) {
	for _, s := range r.workers.grow(n) {
		r.spawn(ctx, s)
	}
	for _, s := range r.workers.shrink(n) {
		r.d.Registry.Unregister(s.name)
		if s.busy {
			// Its task goes back to the queue and runs on a remaining worker.
			r.taskLost(ctx, s.task, "its worker was retired by a smaller max_workers")
			r.d.Strategy.Forget(s.pid)
		}
		ctx.Stop(s.pid)
	}
	r.workersGauge.Set(float64(len(r.workers.slots)))
}

func (r *Router) spawn(ctx actor.Context, s *slot) {
	pid, err := ctx.SpawnNamed(workerProps(s.name, r.d), s.pidName())
	if err != nil {
		// The name is still held by a process that has not finished stopping:
		// take the next incarnation name.
		s.gen++
		pid, err = ctx.SpawnNamed(workerProps(s.name, r.d), s.pidName())
		if err != nil {
			panic(fmt.Sprintf("router: spawn %s: %v", s.name, err))
		}
	}
	r.workers.setPID(s, pid)
	s.pinging, s.busy, s.task = false, false, ""
	r.d.Registry.Register(s.name, r.d.Name, pid)
}

// workerTerminated replaces a worker that stopped without the router asking
// (its supervisor gave up on it). Retired and replaced workers are no longer
// in the set and are ignored.
func (r *Router) workerTerminated(ctx actor.Context, who *actor.PID) {
	r.d.Strategy.Forget(who)
	s := r.workers.byPID(who)
	if s == nil || r.stopping {
		return
	}
	r.log.Warn().Str("worker", s.name).Msg("worker stopped; replacing it")
	task := s.task
	r.replace(ctx, s)
	if task != "" {
		r.taskLost(ctx, task, "its worker stopped")
	}
	r.dispatch(ctx)
}

func (r *Router) replace(ctx actor.Context, s *slot) {
	old := s.pid
	s.gen++
	r.spawn(ctx, s)
	ctx.Stop(old)
	r.replaced++
	r.replacedCount.Inc()
}

// checkWorkers pings every worker that is not busy, restarting or already
// being pinged; one that does not answer within the timeout is replaced.
func (r *Router) checkWorkers(ctx actor.Context) {
	timeout := min(conf.Seconds(r.cfg.ParallelExecution.HealthCheckInterval), maxPingTimeout)
	for _, s := range r.workers.slots {
		if s.pinging || s.busy {
			continue
		}
		if e, ok := r.d.Registry.Get(s.name); ok && e.State != supervisor.Running {
			continue
		}
		s.pinging = true
		r.pingSeq++
		pid := s.pid
		future := ctx.RequestFuture(pid, &messages.Ping{Seq: r.pingSeq}, timeout)
		ctx.ReenterAfter(future, func(_ any, err error) {
			if s.pid == nil || s.pid.Id != pid.Id {
				return // replaced or retired meanwhile
			}
			s.pinging = false
			if err != nil {
				r.log.Warn().Str("worker", s.name).Err(err).Msg("worker failed its health check; replacing it")
				r.replace(ctx, s)
			}
		})
	}
}

func (r *Router) scheduleHealthCheck() {
	r.stopHealthCheck()
	r.healthGen++
	gen, system, self := r.healthGen, r.system, r.self
	r.healthTimer = r.d.Clock.AfterFunc(conf.Seconds(r.cfg.ParallelExecution.HealthCheckInterval), func() {
		system.Root.Send(self, &healthTick{gen: gen})
	})
}

func (r *Router) stopHealthCheck() {
	if r.healthTimer != nil {
		r.healthTimer.Stop()
		r.healthTimer = nil
	}
}

func (r *Router) stats() *messages.RouterStats {
	pe := r.cfg.ParallelExecution
	levels, lb := pe.PriorityLevels, pe.LoadBalancing
	if !r.cfg.EnableAdvancedOptimization {
		levels, lb = 1, false // plain FIFO pool
	}
	return &messages.RouterStats{
		Workers:        len(r.workers.slots),
		ActiveTasks:    r.workers.busy(),
		Queued:         r.queue.len(),
		QueueCapacity:  pe.QueueSize,
		PriorityLevels: levels,
		LoadBalancing:  lb,
		Replaced:       r.replaced,
		Draining:       r.draining,
	}
}

func (r *Router) status() *messages.StatusReport {
	st := r.stats()
	rep := &messages.StatusReport{Actor: r.d.Name, State: messages.StateHealthy}
	if limit := r.cfg.Monitoring.HighUtilizationThreshold * float64(st.QueueCapacity); float64(st.Queued) > limit {
		rep.State = messages.StateDegraded
		rep.Detail = fmt.Sprintf("queue holds %d of %d", st.Queued, st.QueueCapacity)
	}
	return rep
}
