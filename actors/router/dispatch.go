package router

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/messages"
)

// submit admits a task: refused ones are answered at once, accepted ones
// queued and dispatched when a worker is free.
func (r *Router) submit(ctx actor.Context, msg *messages.SubmitTask) {
	t := msg.Task
	replyTo := msg.ReplyTo
	if replyTo == nil {
		replyTo = ctx.Sender()
	}
	if t == nil {
		r.answer(ctx, replyTo, &messages.TaskResult{Status: messages.TaskFailed,
			Err: &messages.TaskError{Code: messages.CodeBadRequest, Message: "no task"}})
		return
	}
	if t.ID == "" {
		t.ID = NewTaskID()
	}
	now := r.d.Clock.Now()
	t.Submitted = now
	refuse := func(code, format string, args ...any) {
		res := failed(t, code, fmt.Sprintf(format, args...))
		r.metrics.finished(t.Upstream, code)
		r.answer(ctx, replyTo, res)
	}
	switch {
	case r.draining:
		refuse(messages.CodeShuttingDown, "deer is shutting down and accepts no new tasks")
		return
	case r.cfg.Upstreams[t.Upstream].BaseURL == "":
		refuse(messages.CodeUnknownTarget, "upstream %q is not configured", t.Upstream)
		return
	case t.Priority < 0 || t.Priority >= r.cfg.ParallelExecution.PriorityLevels:
		refuse(messages.CodeBadRequest, "priority %d is outside 0..%d", t.Priority, r.cfg.ParallelExecution.PriorityLevels-1)
		return
	case r.tasks[t.ID] != nil:
		refuse(messages.CodeBadRequest, "task id %q is already in use", t.ID)
		return
	}
	if key := idempotencyKey(t); key != "" {
		if done, ok := r.idemDone[key]; ok && now.Before(done.expires) {
			r.answerAccepted(ctx, replyTo, msg.Async, done.result.ID)
			if !msg.Async {
				r.answer(ctx, replyTo, copyResult(done.result))
			}
			return
		}
		if id, ok := r.idemRunning[key]; ok {
			if first := r.tasks[id]; first != nil {
				if msg.Async {
					r.answerAccepted(ctx, replyTo, true, id)
				} else {
					first.waiters = append(first.waiters, replyTo)
				}
				return
			}
		}
	}
	if r.queue.len() >= r.cfg.ParallelExecution.QueueSize {
		refuse(messages.CodeQueueFull, "the queue holds %d tasks, its limit (parallel_execution.queue_size)", r.queue.len())
		return
	}

	e := &entry{task: t, replyTo: replyTo, async: msg.Async, state: messages.TaskQueued, accepted: now}
	if key := idempotencyKey(t); key != "" {
		e.idemKey = key
		r.idemRunning[key] = t.ID
	}
	r.tasks[t.ID] = e
	r.queue.push(&item{id: t.ID, level: r.level(t), enqueued: now})
	r.answerAccepted(ctx, replyTo, msg.Async, t.ID)
	r.dispatch(ctx)
}

// level is the queue level of t: its priority, or the one FIFO level when
// advanced optimization is off.
func (r *Router) level(t *messages.Task) int {
	if !r.cfg.EnableAdvancedOptimization {
		return 0
	}
	return t.Priority
}

// idempotencyKey scopes a client's key to the upstream; streams cannot be
// replayed, so they are never deduplicated.
func idempotencyKey(t *messages.Task) string {
	if t.IdempotencyKey == "" || t.Stream {
		return ""
	}
	return t.Upstream + "\x00" + t.IdempotencyKey
}

func (r *Router) answerAccepted(ctx actor.Context, to *actor.PID, async bool, id string) {
	if async && to != nil {
		ctx.Send(to, &messages.TaskAccepted{ID: id})
	}
}

func (r *Router) answer(ctx actor.Context, to *actor.PID, res *messages.TaskResult) {
	if to != nil {
		ctx.Send(to, res)
	}
}

// dispatch hands queued tasks to idle workers, most urgent first.
func (r *Router) dispatch(ctx actor.Context) {
	for r.queue.len() > 0 {
		s := r.idleWorker()
		if s == nil {
			break
		}
		it := r.queue.pop(r.d.Clock.Now())
		e := r.tasks[it.id]
		if e == nil {
			continue
		}
		now := r.d.Clock.Now()
		e.state, e.slot, e.started = messages.TaskRunning, s, now
		s.busy, s.task = true, it.id
		r.useSeq++
		s.lastUsed = r.useSeq
		timeout := taskTimeout(e.task, r.cfg)
		ctx.Request(s.pid, &runTask{task: e.task, timeout: timeout})
		e.overdue = now.Add(timeout + watchdogGrace)
		r.armWatchdog(e.overdue)
	}
	r.queueGauge.Set(float64(r.queue.len()))
	r.metrics.inFlight.Set(float64(len(r.tasks)))
}

// idleWorker picks a free worker: with load balancing the one idle longest
// (spreading load evenly), else the lowest-numbered (a plain pool).
func (r *Router) idleWorker() *slot {
	var best *slot
	lb := r.loadBalancing()
	for _, s := range r.workers.slots {
		if s.busy || s.pid == nil {
			continue
		}
		if !lb {
			return s
		}
		if best == nil || s.lastUsed < best.lastUsed {
			best = s
		}
	}
	return best
}

func (r *Router) loadBalancing() bool {
	return r.cfg.EnableAdvancedOptimization && r.cfg.ParallelExecution.LoadBalancing
}

// taskFinished records a worker's result and answers the task's callers.
func (r *Router) taskFinished(ctx actor.Context, msg *taskFinished) {
	if s := r.workers.byPID(msg.worker); s != nil && msg.idle && s.task == msg.id {
		s.busy, s.task = false, ""
	}
	e := r.tasks[msg.id]
	if e == nil || e.slot == nil || e.slot.pid.Id != msg.worker.Id {
		// Answered already (cancelled, timed out by the watchdog) or a late
		// report from a replaced worker: only the worker's freedom matters.
		if msg.result.Stream != nil {
			msg.result.Stream.Close()
		}
		r.dispatch(ctx)
		return
	}
	r.finish(ctx, e, msg.result)
	r.dispatch(ctx)
}

// workerIdle frees a worker whose streamed task's body was closed.
func (r *Router) workerIdle(ctx actor.Context, msg *workerIdle) {
	if s := r.workers.byPID(msg.worker); s != nil && s.task == msg.id {
		s.busy, s.task = false, ""
	}
	r.dispatch(ctx)
}

// finish answers every caller of e once and forgets the task.
func (r *Router) finish(ctx actor.Context, e *entry, res *messages.TaskResult) {
	now := r.d.Clock.Now()
	t := e.task
	delete(r.tasks, t.ID)
	res.ID = t.ID
	if !e.started.IsZero() {
		res.Queue = e.started.Sub(e.accepted)
	} else {
		res.Queue = now.Sub(e.accepted)
	}
	res.Latency = now.Sub(e.accepted)

	outcome := res.Status
	if res.Err != nil {
		outcome = res.Err.Code
	}
	r.metrics.finished(t.Upstream, outcome)
	r.metrics.duration.Update(res.Latency.Seconds())
	if overhead := res.Latency - res.Upstream; overhead >= 0 && res.Upstream > 0 {
		r.metrics.overhead.Update(overhead.Seconds())
	}
	r.logTask(e, res)

	if e.idemKey != "" {
		delete(r.idemRunning, e.idemKey)
		if res.Status == messages.TaskSucceeded {
			r.idemDone[e.idemKey] = finished{result: res, expires: now.Add(resultTTL)}
		}
	}
	if e.async || e.idemKey != "" {
		r.results[t.ID] = finished{result: res, expires: now.Add(resultTTL)}
	}
	if !e.async {
		r.answer(ctx, e.replyTo, res)
	}
	for _, w := range e.waiters {
		r.answer(ctx, w, copyResult(res))
	}
	if r.draining {
		r.drainedFinished++
	}
	r.metrics.inFlight.Set(float64(len(r.tasks)))
	r.checkDrained(ctx)
}

// logTask writes the task's line (times in milliseconds, zerolog's unit for
// durations).
func (r *Router) logTask(e *entry, res *messages.TaskResult) {
	mon := r.cfg.Monitoring
	slow := res.Latency > time.Duration(mon.SlowRequestThreshold*float64(time.Second))
	if !mon.DetailedLogging && !slow {
		return
	}
	ev := r.log.Info()
	if slow {
		ev = r.log.Warn()
		r.d.Metrics.GetOrCreateCounter("deer_slow_tasks_total" + metricname.Labels("upstream", e.task.Upstream)).Inc()
	}
	ev = ev.Str("task", e.task.ID).Str("upstream", e.task.Upstream).Int("priority", e.task.Priority).
		Str("status", res.Status).Int("upstream_status", res.UpstreamStatus).Int("attempts", res.Attempts).
		Str("cache", res.Cache).Dur("queue_ms", res.Queue).Dur("upstream_ms", res.Upstream).Dur("latency_ms", res.Latency)
	if res.Err != nil {
		ev = ev.Str("error", res.Err.Code)
	}
	if slow {
		ev.Msg("slow task")
	} else {
		ev.Msg("task")
	}
}

// cancel withdraws a task. A queued task leaves the queue; a running one's
// call is cancelled and its worker freed when the call returns.
func (r *Router) cancel(ctx actor.Context, id string) *messages.TaskCancelled {
	e := r.tasks[id]
	if e == nil {
		state := ""
		if done, ok := r.results[id]; ok {
			state = done.result.Status
		}
		return &messages.TaskCancelled{ID: id, Found: false, State: state}
	}
	if e.state == messages.TaskQueued {
		r.queue.remove(id)
	} else if e.slot != nil {
		ctx.Send(e.slot.pid, &cancelRun{id: id})
	}
	r.finish(ctx, e, failed(e.task, messages.CodeCancelled, "the task was cancelled"))
	r.dispatch(ctx)
	return &messages.TaskCancelled{ID: id, Found: true, State: messages.TaskFailed}
}

func (r *Router) taskStatus(id string) *messages.TaskStatusReport {
	if e := r.tasks[id]; e != nil {
		return &messages.TaskStatusReport{ID: id, Found: true, State: e.state}
	}
	if done, ok := r.results[id]; ok && r.d.Clock.Now().Before(done.expires) {
		return &messages.TaskStatusReport{ID: id, Found: true, State: done.result.Status, Result: copyResult(done.result)}
	}
	return &messages.TaskStatusReport{ID: id, Found: false}
}

// taskLost puts back the task a dead worker held, or fails it after it has
// lost maxCrashes workers: every accepted task gets exactly one answer.
func (r *Router) taskLost(ctx actor.Context, id, why string) {
	e := r.tasks[id]
	if e == nil || e.state != messages.TaskRunning {
		return
	}
	e.crashes++
	if e.crashes >= maxCrashes {
		r.finish(ctx, e, failed(e.task, messages.CodeInternal,
			fmt.Sprintf("the task crashed its worker %d times (%s)", e.crashes, why)))
		return
	}
	r.log.Warn().Str("task", id).Int("crashes", e.crashes).Str("why", why).Msg("re-dispatching the task of a lost worker")
	e.state, e.slot = messages.TaskQueued, nil
	r.queue.pushFront(&item{id: id, level: r.level(e.task), enqueued: e.accepted})
}

// armWatchdog makes sure the router's one watchdog timer fires by due. A
// single timer for all running tasks, set to the earliest of their overdue
// times, instead of one per task.
func (r *Router) armWatchdog(due time.Time) {
	if r.watchdog != nil && !due.Before(r.watchdogDue) {
		return
	}
	if r.watchdog != nil {
		r.watchdog.Stop()
	}
	system, self := r.system, r.self
	r.watchdogDue = due
	r.watchdog = r.d.Clock.AfterFunc(due.Sub(r.d.Clock.Now()), func() {
		system.Root.Send(self, &watchdogFired{due: due})
	})
}

// watchdogFired answers every running task whose worker did not report
// within its timeout (plus grace) and replaces that worker: its call is
// wedged. Then it arms the timer for the next running task's overdue time.
func (r *Router) watchdogFired(ctx actor.Context, msg *watchdogFired) {
	if r.watchdog == nil || !msg.due.Equal(r.watchdogDue) {
		return // a timer that was replaced
	}
	r.watchdog = nil
	now := r.d.Clock.Now()
	var next time.Time
	for _, e := range r.tasks {
		if e.state != messages.TaskRunning {
			continue
		}
		if now.Before(e.overdue) {
			if next.IsZero() || e.overdue.Before(next) {
				next = e.overdue
			}
			continue
		}
		s, id := e.slot, e.task.ID
		r.finish(ctx, e, failed(e.task, messages.CodeTimeout,
			fmt.Sprintf("the task ran longer than its timeout of %v", taskTimeout(e.task, r.cfg))))
		if s != nil && s.task == id {
			r.log.Warn().Str("worker", s.name).Str("task", id).Msg("worker did not report past the task timeout; replacing it")
			r.replace(ctx, s)
		}
	}
	if !next.IsZero() {
		r.armWatchdog(next)
	}
	r.dispatch(ctx)
}

// deliveryFailed fails a task whose runTask crashed its worker repeatedly.
func (r *Router) deliveryFailed(ctx actor.Context, msg *messages.DeliveryFailed) {
	run, ok := msg.Message.(*runTask)
	if !ok {
		return
	}
	e := r.tasks[run.task.ID]
	if e == nil {
		return
	}
	if s := e.slot; s != nil {
		s.busy, s.task = false, ""
	}
	r.finish(ctx, e, failed(e.task, messages.CodeInternal,
		fmt.Sprintf("the task crashed its worker %d times: %s", msg.Attempts, msg.Reason)))
	r.dispatch(ctx)
}

// drain stops admission and answers once every task is done, or at the
// deadline with shutting_down for what is left.
func (r *Router) drain(ctx actor.Context, msg *messages.DrainTasks) {
	r.draining = true
	if ctx.Sender() != nil {
		r.drainWaiters = append(r.drainWaiters, ctx.Sender())
	}
	if r.drainTimer == nil {
		system, self := r.system, r.self
		r.drainTimer = r.d.Clock.AfterFunc(max(msg.Deadline.Sub(r.d.Clock.Now()), 0), func() {
			system.Root.Send(self, &drainDeadline{})
		})
	}
	r.checkDrained(ctx)
}

func (r *Router) drainExpired(ctx actor.Context) {
	for _, e := range r.tasks {
		if e.state == messages.TaskRunning && e.slot != nil {
			ctx.Send(e.slot.pid, &cancelRun{id: e.task.ID})
		}
		r.abandoned++
		r.finish(ctx, e, failed(e.task, messages.CodeShuttingDown, "deer shut down before the task finished"))
	}
	r.queue.drain()
}

func (r *Router) checkDrained(ctx actor.Context) {
	if !r.draining || len(r.tasks) > 0 || len(r.drainWaiters) == 0 {
		return
	}
	for _, w := range r.drainWaiters {
		ctx.Send(w, &messages.TasksDrained{Finished: r.drainedFinished - r.abandoned, Abandoned: r.abandoned})
	}
	r.drainWaiters = nil
}

// prune forgets results past their time.
func (r *Router) prune() {
	now := r.d.Clock.Now()
	for id, f := range r.results {
		if !now.Before(f.expires) {
			delete(r.results, id)
		}
	}
	for k, f := range r.idemDone {
		if !now.Before(f.expires) {
			delete(r.idemDone, k)
		}
	}
}
