package worker

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/limiter"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/actors/retry"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/reply"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// Deps is what worker/N is built from.
type Deps struct {
	Name     string // SPEC name, "worker/N"
	Live     *conf.Live
	Clock    clock.Clock
	Log      zerolog.Logger
	Registry *supervisor.Registry // finds pool/U, limiter/U and breaker/U/E
	// Board is the breakers' shared view, read on every attempt; nil leaves
	// breakers off the task path.
	Board *breaker.Board
	// Reservoirs are the limiters' tokens granted ahead of demand, per
	// upstream; the worker takes one without a message when there is one.
	Reservoirs map[string]*limiter.Reservoir
	// Lanes are the pools' connection leases lent ahead of demand, per
	// upstream; the worker takes one without a message when there is one.
	Lanes map[string]*pool.Lane
	// Dispatcher runs the worker's mailbox; nil means protoactor's default.
	Dispatcher actor.Dispatcher
}

// Run is the router's order to execute a task. The router sends it with
// Request, so a task that keeps crashing the worker comes back to it as
// DeliveryFailed.
type Run struct {
	Task    *messages.Task
	Timeout time.Duration // the task's end, from when the worker takes it
}

// Cancel stops the call of task ID, if the worker is running it.
type Cancel struct{ ID string }

// Finished reports a task's result to the router. Idle says whether the
// worker is free again (false for a stream still being read: Idle follows).
type Finished struct {
	ID     string
	Worker *actor.PID
	Result *messages.TaskResult
	Idle   bool
}

// Idle reports that a streamed task's body was closed: the worker is free.
type Idle struct {
	ID     string
	Worker *actor.PID
}

// Hang blocks the worker until Release is closed: tests use it to make a
// worker stop answering, as a wedged actor would.
type Hang struct{ Release <-chan struct{} }

// Worker executes one task at a time. The upstream call runs on a goroutine
// the worker owns, so the worker keeps answering health checks and
// cancellations while it waits.
type Worker struct {
	d   Deps
	log zerolog.Logger
	// stopped is set on Stopping and read by the executor goroutine.
	stopped atomic.Bool

	endpoints map[string][]string              // upstream → its endpoint URLs, filled with breakers
	breakers  map[string]map[string]*actor.PID // upstream → endpoint → breaker

	current string // id of the task being executed, "" when idle
	call    *call  // the current (or last) task's call; stop cancels it
	// jobs feeds the worker's executor goroutine. One long-lived goroutine
	// per worker, rather than one per task, keeps its grown stack and costs
	// no goroutine start per call.
	jobs chan *call
}

var _ actor.Actor = (*Worker)(nil)

// Props builds worker/N (d.Name).
func Props(d Deps) *actor.Props {
	var opts []actor.PropsOption
	if d.Dispatcher != nil {
		opts = append(opts, actor.WithDispatcher(d.Dispatcher))
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Worker{d: d, log: d.Log.With().Str("actor", d.Name).Logger()}
	}, opts...)
}

// Receive handles one message.
func (w *Worker) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		w.jobs = make(chan *call, 1)
		// Room for stale answers to abandoned requests (at most a few per
		// cancelled call) so a real answer is never dropped for lack of it.
		go executor(w.jobs, reply.NewBuffered(ctx.ActorSystem(), 64))
	case *actor.Stopped:
	case *actor.Stopping:
		// The router stopped this worker, or saw it stop (Terminated), and
		// deals with its task itself (requeued, or answered): the call cut
		// short here must not report a "cancelled" result for it.
		w.stopped.Store(true)
		if w.call != nil {
			w.call.stop()
		}
		close(w.jobs)
	case *actor.Restarting:
		if w.call != nil {
			w.call.stop()
		}
		close(w.jobs)
	case *Run:
		w.run(ctx, msg)
	case *Cancel:
		if msg.ID == w.current && w.call != nil {
			w.call.stop()
		}
	case *messages.Ping:
		admin.Respond(ctx, &messages.Pong{Actor: w.d.Name, Seq: msg.Seq})
	case *messages.StatusQuery:
		admin.Respond(ctx, &messages.StatusReport{Actor: w.d.Name, State: messages.StateHealthy})
	case *messages.StatsQuery:
		// The router reports the worker set as a whole.
		admin.Respond(ctx, &messages.StatsReport{Actor: w.d.Name})
	case *messages.ApplyConfig:
		admin.Respond(ctx, &messages.ConfigApplied{Actor: w.d.Name})
	case *Hang:
		<-msg.Release
	default:
		w.log.Debug().Type("type", msg).Msg("unknown message")
	}
}

func (w *Worker) run(ctx actor.Context, msg *Run) {
	cfg := w.d.Live.Load()
	t := msg.Task
	up := cfg.Upstreams[t.Upstream]
	poolPID, _ := w.d.Registry.PID("pool/" + t.Upstream)
	limiterPID, _ := w.d.Registry.PID("limiter/" + t.Upstream)
	// No timer and no context for the task itself: each attempt's deadline
	// includes the task's end (see call.attempt).
	c := &call{
		system:    ctx.ActorSystem(),
		router:    ctx.Parent(),
		worker:    ctx.Self(),
		pool:      poolPID,
		lane:      w.d.Lanes[t.Upstream],
		limiter:   limiterPID,
		tokens:    w.d.Reservoirs[t.Upstream],
		breakers:  w.breakersOf(t.Upstream, up),
		endpoints: w.endpoints[t.Upstream],
		board:     w.d.Board,
		up:        up,
		cfg:       cfg,
		schedule:  retry.ScheduleFrom(cfg.ErrorRecovery),
		task:      t,
		stopped:   &w.stopped,
		deadline:  time.Now().Add(msg.Timeout),
		clock:     w.d.Clock,
	}
	w.current, w.call = t.ID, c
	select {
	case w.jobs <- c:
	default:
		// The router gives a worker one task at a time; a second one here
		// means its bookkeeping is wrong. Crash so supervision sees it (the
		// task is redelivered).
		c.stop()
		panic("worker " + w.d.Name + " got a task while its executor is busy")
	}
}

// breakersOf maps an upstream's endpoints to their breaker actors, looked
// up once per upstream and worker (upstreams are fixed while running; a
// restarted breaker keeps its PID).
func (w *Worker) breakersOf(name string, up conf.Upstream) map[string]*actor.PID {
	if m, ok := w.breakers[name]; ok {
		return m
	}
	eps := up.EndpointURLs()
	m := make(map[string]*actor.PID, len(eps))
	for i, ep := range eps {
		if pid, ok := w.d.Registry.PID(breaker.ActorName(name, eps, i)); ok {
			m[ep] = pid
		}
	}
	if w.breakers == nil {
		w.breakers = map[string]map[string]*actor.PID{}
		w.endpoints = map[string][]string{}
	}
	w.breakers[name], w.endpoints[name] = m, eps
	return m
}

// executor runs the worker's calls one after the other until jobs closes.
// Its box receives the answers for all of them, told apart by request id.
func executor(jobs <-chan *call, box *reply.Box) {
	defer box.Close()
	urls := map[urlKey]string{}
	for c := range jobs {
		drainStale(box)
		c.box, c.urls = box, urls
		c.execute()
	}
}

// drainStale drops answers left over from an earlier call's abandoned
// requests; the new call's requests have new ids anyway.
func drainStale(box *reply.Box) {
	for {
		select {
		case <-box.C():
		default:
			return
		}
	}
}
