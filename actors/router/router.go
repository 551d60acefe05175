package router

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/cache"
	"github.com/deer-runtime/deer/actors/limiter"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/fanout"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/internal/taskid"
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
	// Front is cache/l1's store, read at admission without a message; nil
	// leaves L1 out (lookups start at cache/l2).
	Front *cache.Front
	// Receive, when set, wraps each worker's receive, given its SPEC name
	// (fault injection reaches the workers through it).
	Receive func(name string, next actor.ReceiverFunc) actor.ReceiverFunc
	// Publish, when set (a cluster node), is told when an async task starts
	// running and when an async or idempotent task finishes, so that other
	// nodes can answer for it. The book knows nothing of it.
	Publish Publisher
}

// Publisher shares task states beyond this node. Its methods are called on
// the router's goroutine and must not block (they queue a write); res must
// be read before they return, as its caller owns it afterwards.
type Publisher interface {
	Running(t *messages.Task)
	Finished(t *messages.Task, res *messages.TaskResult)
}

// maxPingTimeout bounds how long a health-check ping waits for its answer.
const maxPingTimeout = 5 * time.Second

// Router is the WorkerRouter actor: the shell around its Book. It owns the
// worker actors (spawning, health checks, replacement) and performs what
// the book decides.
type Router struct {
	d    Deps
	log  zerolog.Logger
	cfg  *conf.Config
	book *Book
	link *link

	system *actor.ActorSystem
	self   *actor.PID

	healthTimer clock.Timer
	healthGen   uint64 // ignores ticks of a timer that was rescheduled
	pingSeq     uint64
	replaced    int64
	// stopping is set once the router itself stops or restarts: the library
	// then stops the workers, and those terminations must not be replaced.
	stopping bool

	watchdog   clock.Timer // fires at the book's watchdogDue
	drainTimer clock.Timer
	later      []any // answers to the book that perform found it must give itself

	workersGauge  *metrics.Gauge
	queueGauge    *metrics.Gauge
	replacedCount *metrics.Counter
	coalesced     *metrics.Counter
	metrics       *taskMetrics
	// now is when the message being handled arrived (the clock is read
	// once per message); finished tasks' latencies are recorded at it.
	now time.Time
}

// link is where shared streams report their end: the router's PID, which
// a restart keeps. Set on Started; read by fan-out goroutines.
type link struct {
	mu     sync.Mutex
	system *actor.ActorSystem
	self   *actor.PID
}

func (l *link) set(system *actor.ActorSystem, self *actor.PID) {
	l.mu.Lock()
	l.system, l.self = system, self
	l.mu.Unlock()
}

// share fans src out to a flight's callers; its end comes back to the
// router as a StreamEnded message.
func (l *link) share(src io.ReadCloser, seq uint64) Shared {
	return fanout.New(src, func(complete bool, data []byte, chunks []int) {
		l.mu.Lock()
		system, self := l.system, l.self
		l.mu.Unlock()
		system.Root.Send(self, &StreamEnded{Seq: seq, Complete: complete, Data: data, Chunks: chunks})
	})
}

var _ actor.Actor = (*Router)(nil)

// healthTick is the router's timer message for a round of worker pings.
type healthTick struct{ gen uint64 }

// Props builds the router; its children (the workers) are supervised by
// d.Strategy. The book is made here, once: it survives router restarts.
func Props(d Deps) *actor.Props {
	l := &link{}
	env := Env{Share: l.share, NewID: taskid.New}
	if d.Front != nil {
		env.L1 = d.Front
	}
	b := NewBook(d.Live.Load(), env)
	m := newTaskMetrics(d.Metrics)
	return actor.PropsFromProducer(func() actor.Actor { return newRouter(d, b, l, m) }, actor.WithSupervisor(d.Strategy))
}

func newRouter(d Deps, b *Book, l *link, m *taskMetrics) *Router {
	return &Router{
		book:          b,
		link:          l,
		metrics:       m,
		d:             d,
		log:           d.Log.With().Str("actor", d.Name).Logger(),
		workersGauge:  d.Metrics.GetOrCreateGauge("deer_workers", nil),
		queueGauge:    d.Metrics.GetOrCreateGauge("deer_queue_size", nil),
		replacedCount: d.Metrics.GetOrCreateCounter("deer_workers_replaced_total"),
		coalesced:     d.Metrics.GetOrCreateCounter("deer_coalesced_total"),
	}
}

// Receive handles one message: the book decides, perform carries it out.
func (r *Router) Receive(ctx actor.Context) {
	now := r.d.Clock.Now()
	r.now = now
	switch msg := ctx.Message().(type) {
	case *messages.SubmitTask:
		replyTo := msg.ReplyTo
		if replyTo == nil {
			replyTo = ctx.Sender()
		}
		r.perform(ctx, r.book.Submit(now, msg, replyTo))
	case *worker.Finished:
		r.perform(ctx, r.book.Finished(now, msg, r.book.workers.byPID(msg.Worker)))
	case *worker.Idle:
		r.perform(ctx, r.book.WorkerIdle(now, r.book.workers.byPID(msg.Worker), msg.ID))
	case *messages.CacheLookedUp:
		r.perform(ctx, r.book.CacheLookedUp(now, msg))
	case *messages.BatchReady:
		r.perform(ctx, r.book.BatchReady(now, msg))
	case *messages.BatchRejected:
		r.perform(ctx, r.book.BatchRejected(now, msg))
	case *messages.BatchAccepted:
	case *StreamEnded:
		r.perform(ctx, r.book.StreamEnded(now, msg))
	case *streamClosed:
		r.streamDone(now, msg)
	case *messages.CancelTask:
		fx, res := r.book.Cancel(now, msg)
		r.perform(ctx, fx)
		admin.Respond(ctx, res)
	case *messages.TaskStatusQuery:
		admin.Respond(ctx, r.book.Status(now, msg))
	case *watchdogFired:
		r.watchdog = nil
		r.perform(ctx, r.book.Watchdog(now, msg.due))
	case *messages.DeliveryFailed:
		r.perform(ctx, r.book.DeliveryFailed(now, msg))
	case *messages.DrainTasks:
		r.drain(ctx, msg)
	case *drainDeadline:
		r.perform(ctx, r.book.DrainExpired(now))
	case *healthTick:
		if msg.gen == r.healthGen {
			r.checkWorkers(ctx)
			r.book.Prune(now)
			r.scheduleHealthCheck()
		}
	case *actor.Started:
		r.started(ctx)
	case *actor.Restarting:
		// Restarts pending from the workers' previous life must not hit the
		// new ones.
		r.stopping = true
		r.stopTimers()
		r.d.Strategy.Reset()
	case *actor.Stopping:
		r.stopping = true
		r.stopTimers()
		r.d.Strategy.Stop()
	case *actor.Stopped:
	case *actor.Terminated:
		r.workerTerminated(ctx, msg.Who)
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

// started spawns the workers; a restarted router first forgets the
// previous life's workers (the library stopped them) and puts their tasks
// back in the queue.
func (r *Router) started(ctx actor.Context) {
	r.system, r.self = ctx.ActorSystem(), ctx.Self()
	r.link.set(r.system, r.self)
	r.cfg = r.d.Live.Load()
	r.perform(ctx, r.book.Restarted(r.d.Clock.Now()))
	for _, e := range r.d.Registry.Entries() {
		if e.Group == r.d.Name {
			r.d.Registry.Unregister(e.Name)
		}
	}
	r.resize(ctx, r.cfg.ParallelExecution.MaxWorkers)
	r.scheduleHealthCheck()
	r.perform(ctx, r.book.Configure(r.d.Clock.Now(), r.cfg))
}

// perform carries out the book's effects, in order.
func (r *Router) perform(ctx actor.Context, fx []Effect) {
	for _, e := range fx {
		switch e := e.(type) {
		case Answer:
			switch {
			case e.Task != nil && e.To != nil && e.Result.Stream != nil:
				r.watch(e.Task, e.Result) // logged when its caller is done with it
			case e.Task != nil:
				r.done(e.Task, e.Result, false, 0)
			}
			// The terminal answer of a task whose result the book keeps
			// (async: no To; or idempotent) is the one other nodes need.
			if p := r.d.Publish; p != nil && e.Task != nil && e.Result.Stream == nil && (e.To == nil || IdempotencyKey(e.Task) != "") {
				p.Finished(e.Task, e.Result)
			}
			if e.To != nil {
				ctx.Send(e.To, e.Result)
			}
		case Accepted:
			ctx.Send(e.To, &messages.TaskAccepted{ID: e.ID})
		case Run:
			if p := r.d.Publish; p != nil {
				if en := r.book.tasks[e.Message.Task.ID]; en != nil && en.async {
					p.Running(e.Message.Task)
				}
			}
			ctx.Request(e.Worker.pid, &e.Message)
		case CancelRun:
			ctx.Send(e.Worker.pid, &worker.Cancel{ID: e.ID})
		case ReplaceWorker:
			r.log.Warn().Str("worker", e.Worker.name).Msg("worker " + e.Why + "; replacing it")
			r.replace(ctx, e.Worker)
		case Requeued:
			r.log.Warn().Str("task", e.ID).Int("crashes", e.Crashes).Str("why", e.Why).Msg("re-dispatching the task of a lost worker")
		case ArmWatchdog:
			r.armWatchdog(e.At)
		case LookupCache:
			r.lookup(ctx, e)
		case StoreCache:
			r.store(ctx, e)
		case EnqueueBatch:
			r.enqueueBatch(ctx, e)
		case CloseStream:
			e.Stream.Close()
		case Drained:
			if r.drainTimer != nil {
				r.drainTimer.Stop()
				r.drainTimer = nil
			}
			for _, to := range e.To {
				ctx.Send(to, &messages.TasksDrained{Finished: e.Finished, Abandoned: e.Abandoned})
			}
		}
	}
	r.queueGauge.Set(float64(r.book.queue.len()))
	r.metrics.inFlight.Set(float64(r.book.Len()))
	// Answers the router gives itself go to the book only now: the effects
	// just performed were in the book's buffer, which its next step reuses.
	for len(r.later) > 0 {
		next := r.later[0]
		r.later = r.later[1:]
		now := r.d.Clock.Now()
		switch m := next.(type) {
		case *messages.CacheLookedUp:
			r.perform(ctx, r.book.CacheLookedUp(now, m))
		case *messages.BatchRejected:
			r.perform(ctx, r.book.BatchRejected(now, m))
		}
	}
}

// lookup asks cache/l2 (then l3) in one exchange; without an L2 it is a
// miss at once.
func (r *Router) lookup(ctx actor.Context, e LookupCache) {
	pid, ok := r.d.Registry.PID("cache/" + messages.TierL2)
	if !ok {
		r.later = append(r.later, &messages.CacheLookedUp{Ref: e.Ref, Key: e.Key})
		return
	}
	ctx.Send(pid, &messages.CacheLookup{Ref: e.Ref, Key: e.Key, ReplyTo: r.self})
}

// store writes an answer to L1 (the hot tier) and L3 (so it survives a
// restart), fire-and-forget: the task was answered already.
func (r *Router) store(ctx actor.Context, e StoreCache) {
	value := cache.EncodeAnswer(e.Answer)
	for _, tier := range []string{messages.TierL1, messages.TierL3} {
		if pid, ok := r.d.Registry.PID("cache/" + tier); ok {
			ctx.Send(pid, &messages.CachePut{Key: e.Key, Value: value, TTL: e.TTL.Seconds()})
		}
	}
	if pid, ok := r.d.Registry.PID("cache/" + messages.TierL2); ok && e.Replace {
		ctx.Send(pid, &messages.CacheDelete{Key: e.Key})
	}
}

// enqueueBatch hands an embedding call to batch/U; without one the call
// goes alone.
func (r *Router) enqueueBatch(ctx actor.Context, e EnqueueBatch) {
	pid, ok := r.d.Registry.PID("batch/" + e.Upstream)
	if !ok {
		r.later = append(r.later, &messages.BatchRejected{ID: e.Ref, Reason: "disabled"})
		return
	}
	ctx.Send(pid, &messages.EnqueueBatchItem{ID: e.Ref, Model: e.Model, Options: e.Options, Inputs: e.Inputs,
		Priority: e.Priority, Payload: e.Payload, ReplyTo: r.self})
}

// done counts a task's outcome and writes its log line. A stream's
// latency runs to the stream's end, which the answer's length decides;
// deer's overhead and slowness are judged on answered, when its headers came
// (for a buffered task, its latency).
func (r *Router) done(t *messages.Task, res *messages.TaskResult, streamed bool, answered time.Duration) {
	if !streamed {
		answered = res.Latency
	}
	outcome := res.Status
	if res.Err != nil {
		outcome = res.Err.Code
	}
	r.metrics.finished(t.Upstream, outcome)
	r.metrics.duration.Update(res.Latency.Seconds())
	r.metrics.recent.add(r.now, res.Latency)
	if overhead := answered - res.Upstream; overhead >= 0 && res.Upstream > 0 {
		r.metrics.overhead.Update(overhead.Seconds())
	}
	if res.Cache == messages.CacheCoalesced {
		r.coalesced.Inc()
	}
	r.logTask(t, res, streamed, answered)
}

// logTask writes the task's line (times in milliseconds, zerolog's unit for
// durations); a stream's has headers_ms too.
func (r *Router) logTask(t *messages.Task, res *messages.TaskResult, streamed bool, answered time.Duration) {
	mon := r.cfg.Monitoring
	slow := answered > time.Duration(mon.SlowRequestThreshold*float64(time.Second))
	if !mon.DetailedLogging && !slow {
		return
	}
	ev := r.log.Info()
	if slow {
		ev = r.log.Warn()
		r.d.Metrics.GetOrCreateCounter("deer_slow_tasks_total" + metricname.Labels("upstream", t.Upstream)).Inc()
	}
	ev = ev.Str("task", t.ID).Str("upstream", t.Upstream).Int("priority", t.Priority).
		Str("status", res.Status).Int("upstream_status", res.UpstreamStatus).Int("attempts", res.Attempts).
		Str("cache", res.Cache).Dur("queue_ms", res.Queue).Dur("upstream_ms", res.Upstream).Dur("latency_ms", res.Latency)
	if streamed {
		ev = ev.Dur("headers_ms", answered)
	}
	if res.Err != nil {
		ev = ev.Str("error", res.Err.Code)
	}
	if slow {
		ev.Msg("slow task")
	} else {
		ev.Msg("task")
	}
}

// armWatchdog sets the router's one watchdog timer to fire at due: a single
// timer for every entry, at the earliest of their due times.
func (r *Router) armWatchdog(due time.Time) {
	if r.watchdog != nil {
		r.watchdog.Stop()
	}
	system, self := r.system, r.self
	r.watchdog = r.d.Clock.AfterFunc(due.Sub(r.d.Clock.Now()), func() {
		system.Root.Send(self, &watchdogFired{due: due})
	})
}

// drain stops admission; at the deadline what is left is answered
// shutting_down.
func (r *Router) drain(ctx actor.Context, msg *messages.DrainTasks) {
	now := r.d.Clock.Now()
	if r.drainTimer == nil {
		system, self := r.system, r.self
		r.drainTimer = r.d.Clock.AfterFunc(max(msg.Deadline.Sub(now), 0), func() {
			system.Root.Send(self, &drainDeadline{})
		})
	}
	r.perform(ctx, r.book.Drain(now, ctx.Sender()))
}

func (r *Router) apply(ctx actor.Context, cfg *conf.Config) {
	old := r.cfg
	r.cfg = cfg
	if n := cfg.ParallelExecution.MaxWorkers; n != len(r.book.workers.slots) {
		r.log.Info().Int("from", len(r.book.workers.slots)).Int("to", n).Msg("resizing worker set")
		r.resize(ctx, n)
	}
	if cfg.ParallelExecution.HealthCheckInterval != old.ParallelExecution.HealthCheckInterval {
		r.scheduleHealthCheck()
	}
	r.perform(ctx, r.book.Configure(r.d.Clock.Now(), cfg))
}

// resize spawns or retires workers until there are n.
func (r *Router) resize(ctx actor.Context, n int) {
	for _, s := range r.book.workers.grow(n) {
		// The first life's workers are worker/N; later lives' start at a
		// generation no replacement of an earlier life reaches.
		s.gen = (r.book.lives - 1) << 20
		r.spawn(ctx, s)
	}
	retired, fx := r.book.Retire(r.d.Clock.Now(), n)
	for _, s := range retired {
		r.d.Registry.Unregister(s.name)
		if s.busy {
			r.d.Strategy.Forget(s.pid)
		}
		ctx.Stop(s.pid)
	}
	r.workersGauge.Set(float64(len(r.book.workers.slots)))
	r.perform(ctx, fx)
}

func (r *Router) spawn(ctx actor.Context, s *slot) {
	props := worker.Props(worker.Deps{
		Name: s.name, Live: r.d.Live, Clock: r.d.Clock, Log: r.d.Log, Registry: r.d.Registry,
		Board: r.d.Board, Reservoirs: r.d.Reservoirs, Lanes: r.d.Lanes, Dispatcher: r.d.Dispatcher,
	})
	if wrap := r.d.Receive; wrap != nil {
		name := s.name
		props.Configure(actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc { return wrap(name, next) }))
	}
	pid, err := ctx.SpawnNamed(props, s.pidName())
	if err != nil {
		// The name is still held by a process that has not finished stopping:
		// take the next incarnation name.
		s.gen++
		pid, err = ctx.SpawnNamed(props, s.pidName())
		if err != nil {
			panic(fmt.Sprintf("router: spawn %s: %v", s.name, err))
		}
	}
	r.book.workers.setPID(s, pid)
	s.pinging = false
	r.d.Registry.Register(s.name, r.d.Name, pid)
}

// workerTerminated replaces a worker that stopped without the router asking
// (its supervisor gave up on it). Retired and replaced workers are no longer
// in the set and are ignored.
func (r *Router) workerTerminated(ctx actor.Context, who *actor.PID) {
	r.d.Strategy.Forget(who)
	s := r.book.workers.byPID(who)
	if s == nil || r.stopping {
		return
	}
	r.log.Warn().Str("worker", s.name).Msg("worker stopped; replacing it")
	task := s.task
	r.replace(ctx, s)
	if task != "" {
		r.perform(ctx, r.book.WorkerLost(r.d.Clock.Now(), task, "its worker stopped"))
		return
	}
	r.perform(ctx, r.book.Configure(r.d.Clock.Now(), r.cfg))
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
	for _, s := range r.book.workers.slots {
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
	if r.healthTimer != nil {
		r.healthTimer.Stop()
	}
	r.healthGen++
	gen, system, self := r.healthGen, r.system, r.self
	r.healthTimer = r.d.Clock.AfterFunc(conf.Seconds(r.cfg.ParallelExecution.HealthCheckInterval), func() {
		system.Root.Send(self, &healthTick{gen: gen})
	})
}

// stopTimers stops the health check and the watchdog; the book keeps what
// is due, and a restarted router arms the watchdog again.
func (r *Router) stopTimers() {
	if r.healthTimer != nil {
		r.healthTimer.Stop()
		r.healthTimer = nil
	}
	if r.watchdog != nil {
		r.watchdog.Stop()
		r.watchdog = nil
	}
}

func (r *Router) stats() *messages.RouterStats {
	pe := r.cfg.ParallelExecution
	levels, lb := pe.PriorityLevels, pe.LoadBalancing
	if !r.cfg.EnableAdvancedOptimization {
		levels, lb = 1, false // plain FIFO pool
	}
	return &messages.RouterStats{
		Workers:        len(r.book.workers.slots),
		ActiveTasks:    r.book.workers.busy(),
		Queued:         r.book.queue.len(),
		QueueCapacity:  pe.QueueSize,
		PriorityLevels: levels,
		LoadBalancing:  lb,
		Replaced:       r.replaced,
		Draining:       r.book.draining,
		Coalesced:      r.book.coalesced,
		Flights:        len(r.book.flights),
		Outcomes:       r.metrics.byOutcome(),
		Latency:        r.metrics.recent.stats(r.now, latencyWindow),
	}
}

func (r *Router) status() *messages.StatusReport {
	queued, capacity := r.book.queue.len(), r.cfg.ParallelExecution.QueueSize
	rep := &messages.StatusReport{Actor: r.d.Name, State: messages.StateHealthy}
	if limit := r.cfg.Monitoring.HighUtilizationThreshold * float64(capacity); float64(queued) > limit {
		rep.State = messages.StateDegraded
		rep.Detail = fmt.Sprintf("queue holds %d of %d", queued, capacity)
	}
	return rep
}
