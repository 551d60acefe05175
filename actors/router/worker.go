package router

import (
	"context"
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

// Worker executes one task at a time; max_workers of them bound the
// concurrency. The upstream call runs on a goroutine the worker owns, so the
// worker keeps answering health checks and cancellations while it waits.
type Worker struct {
	name  string
	log   zerolog.Logger
	live  *conf.Live
	reg   *supervisor.Registry
	clock clock.Clock

	board      *breaker.Board
	endpoints  map[string][]string // upstream → its endpoint URLs, filled with breakers
	reservoirs map[string]*limiter.Reservoir
	lanes      map[string]*pool.Lane
	breakers   map[string]map[string]*actor.PID // upstream → endpoint → breaker

	current string             // id of the task being executed, "" when idle
	cancel  context.CancelFunc // cancels the current task's call
	// jobs feeds the worker's executor goroutine. One long-lived goroutine
	// per worker, rather than one per task, keeps its grown stack and costs
	// no goroutine start per call.
	jobs chan job
}

// job is one call for the executor goroutine.
type job struct {
	call   *call
	ctx    context.Context
	cancel context.CancelFunc
}

var _ actor.Actor = (*Worker)(nil)

// runTask is the router's order to execute a task (sent with Request, so a
// task that keeps crashing the worker comes back as DeliveryFailed).
type runTask struct {
	task    *messages.Task
	timeout time.Duration
}

// cancelRun stops the call of task id, if the worker is running it.
type cancelRun struct{ id string }

// taskFinished reports a task's result to the router. idle says whether the
// worker is free again (false for a stream still being read).
type taskFinished struct {
	id     string
	worker *actor.PID
	result *messages.TaskResult
	idle   bool
}

// workerIdle reports that a streamed task's body was closed.
type workerIdle struct {
	id     string
	worker *actor.PID
}

// hang blocks the worker until release is closed: tests use it to make a
// worker stop answering, as a wedged actor would.
type hang struct{ release <-chan struct{} }

func workerProps(name string, d Deps) *actor.Props {
	var opts []actor.PropsOption
	if d.Dispatcher != nil {
		opts = append(opts, actor.WithDispatcher(d.Dispatcher))
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Worker{name: name, log: d.Log.With().Str("actor", name).Logger(), live: d.Live, reg: d.Registry, clock: d.Clock, board: d.Board, reservoirs: d.Reservoirs, lanes: d.Lanes}
	}, opts...)
}

// Receive handles one message.
func (w *Worker) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		w.jobs = make(chan job, 1)
		// Room for stale answers to abandoned requests (at most a few per
		// cancelled call) so a real answer is never dropped for lack of it.
		go executor(w.jobs, reply.NewBuffered(ctx.ActorSystem(), 64))
	case *actor.Stopped:
	case *actor.Stopping, *actor.Restarting:
		if w.cancel != nil {
			w.cancel()
		}
		close(w.jobs)
	case *runTask:
		w.run(ctx, msg)
	case *cancelRun:
		if msg.id == w.current && w.cancel != nil {
			w.cancel()
		}
	case *messages.Ping:
		admin.Respond(ctx, &messages.Pong{Actor: w.name, Seq: msg.Seq})
	case *messages.StatusQuery:
		admin.Respond(ctx, &messages.StatusReport{Actor: w.name, State: messages.StateHealthy})
	case *messages.StatsQuery:
		// The router reports the worker set as a whole.
		admin.Respond(ctx, &messages.StatsReport{Actor: w.name})
	case *messages.ApplyConfig:
		admin.Respond(ctx, &messages.ConfigApplied{Actor: w.name})
	case *hang:
		<-msg.release
	default:
		w.log.Debug().Type("type", msg).Msg("unknown message")
	}
}

func (w *Worker) run(ctx actor.Context, msg *runTask) {
	cfg := w.live.Load()
	t := msg.task
	up := cfg.Upstreams[t.Upstream]
	poolPID, _ := w.reg.PID("pool/" + t.Upstream)
	limiterPID, _ := w.reg.PID("limiter/" + t.Upstream)
	// No timer for the task itself: each attempt's deadline includes the
	// task's end (see call.attempt).
	runCtx, cancel := context.WithCancel(context.Background())
	w.current, w.cancel = t.ID, cancel
	c := &call{
		system:    ctx.ActorSystem(),
		router:    ctx.Parent(),
		worker:    ctx.Self(),
		pool:      poolPID,
		lane:      w.lanes[t.Upstream],
		limiter:   limiterPID,
		tokens:    w.reservoirs[t.Upstream],
		breakers:  w.breakersOf(t.Upstream, up),
		endpoints: w.endpoints[t.Upstream],
		board:     w.board,
		up:        up,
		cfg:       cfg,
		schedule:  retry.ScheduleFrom(cfg.ErrorRecovery),
		task:      t,
		deadline:  time.Now().Add(msg.timeout),
		now:       w.clock.Now,
		clock:     w.clock,
	}
	select {
	case w.jobs <- job{call: c, ctx: runCtx, cancel: cancel}:
	default:
		// The router gives a worker one task at a time; a second one here
		// means its bookkeeping is wrong. Crash so supervision sees it (the
		// task is redelivered).
		cancel()
		panic("worker " + w.name + " got a task while its executor is busy")
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
		if pid, ok := w.reg.PID(breaker.ActorName(name, eps, i)); ok {
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
func executor(jobs <-chan job, box *reply.Box) {
	defer box.Close()
	for j := range jobs {
		drainStale(box)
		j.call.box = box
		j.call.execute(j.ctx, j.cancel)
	}
}
