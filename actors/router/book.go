package router

import (
	"fmt"
	"io"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/cache"
	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// Book is the router's functional core: every task the router accepted, the
// priority queue, which worker runs what, coalesced flights of identical
// calls, embedding batches, idempotency, results kept for GET /v1/tasks, and
// the drain. Its methods take the time and a message and return Effects; it
// starts no goroutines, reads no clock and sends nothing. router.go feeds it
// messages and performs the effects.
//
// The book outlives a restart of the router actor (it is created once, by
// Props): a restarted router still knows every task it accepted, and the
// tasks that were running on its stopped workers go back to the queue.
type Book struct {
	cfg     *conf.Config
	env     Env
	workers workerSet

	tasks       map[string]*entry
	queue       *queue
	results     map[string]finished // async and idempotent results, by task id
	idemRunning map[string]string   // idempotency key → running task id
	idemDone    map[string]finished // idempotency key → first result

	flights map[string]*flight // cache key → the identical call in flight
	refs    map[uint64]*entry  // pending cache lookup or batch item → its task
	// carried maps a batched item to the combined call carrying it, until
	// the call finishes or the item leaves it (see leftCall).
	carried map[*entry]*entry
	refSeq  uint64
	lookups int    // entries in stateLookup
	streams uint64 // numbers shared streams, so a late end of an old one is told apart

	coalesced uint64 // tasks answered with an identical task's call

	buf effects // the effects of the step being performed (see begin)

	watchdogDue time.Time // when the armed watchdog fires; zero: none armed

	// lives counts the router actor's starts. Workers of a new life get
	// actor names of their own (worker/N~G), so a late report from a
	// worker of the previous life never matches a new worker's PID.
	lives int

	draining        bool
	drainWaiters    []*actor.PID
	drainedFinished int
	abandoned       int
}

// Env is what the book reads outside itself: the L1 cache front (read at
// admission, without a message), the fan-out of a streamed answer to many
// callers, and new task ids. Tests give it deterministic fakes.
type Env struct {
	L1 interface {
		Lookup(now time.Time, key string) (value []byte, expiresAt time.Time, ok bool)
	}
	// Share starts fanning src out; the stream's end comes back to the book
	// as StreamEnded{Seq: seq}.
	Share func(src io.ReadCloser, seq uint64) Shared
	NewID func() string
}

// Shared is one upstream stream fanned out to every caller of a flight
// (internal/fanout.Stream in production).
type Shared interface {
	Join() (io.ReadCloser, bool)
}

// Entry states beyond messages.TaskQueued and TaskRunning. They are
// internal: GET /v1/tasks reports them as queued (or as the flight's).
const (
	stateLookup    = "lookup"    // waiting for cache/l2 and l3
	stateBatching  = "batching"  // waiting in batch/U for its combined call
	stateFollowing = "following" // waiting for an identical call in flight
)

// entry is a task the router has accepted and not yet answered.
type entry struct {
	task     *messages.Task
	replyTo  *actor.PID
	async    bool
	idemKey  string
	state    string
	slot     *slot
	accepted time.Time
	started  time.Time
	due      time.Time // the watchdog acts on the entry at due (zero: never)
	crashes  int
	waiters  []*actor.PID // idempotent repeats waiting for this task's result

	plan     cache.Plan
	flight   *flight // the flight it leads or follows
	detached bool    // its caller was answered (cancelled); it runs on for its followers
	single   bool    // never batched (a combined call's 4xx is retried input by input); beside detached, so both take one word
	ref      uint64  // its pending lookup or batch item
	batch    *combined
	// cancelled is the answer of a running task whose cancel its worker was
	// told of: the worker's report fills in the attempts it made; the
	// watchdog answers it as it is when the worker does not stop in time.
	cancelled *messages.TaskResult
	// queued is its place in the queue, part of the entry rather than an
	// allocation per enqueue: an entry is queued at most once at a time.
	queued item
}

// flight is one upstream call shared by identical tasks (enable_collaboration).
type flight struct {
	key       string
	plan      cache.Plan
	leader    *entry   // the task whose lookup and call serve the flight
	followers []*entry // answered with the leader's result, as "coalesced"
	// While a streamed answer is relayed, the flight stays open: tasks that
	// arrive meanwhile join the stream from its first byte.
	stream Shared
	seq    uint64
	status int
	header map[string][]string
}

// combined is an internal task carrying a batch of embedding calls.
type combined struct {
	items  []*entry
	counts []int
}

// StreamEnded is a shared stream's end: complete when the upstream body was
// read to its end (then Data and Chunks are what it sent).
type StreamEnded struct {
	Seq      uint64
	Complete bool
	Data     []byte
	Chunks   []int
}

// lookupTimeout bounds a cache lookup: a tier that does not answer (it is
// restarting, or the message was lost) costs a miss, not the task.
const lookupTimeout = time.Second

// NewBook returns an empty book running on cfg.
func NewBook(cfg *conf.Config, env Env) *Book {
	return &Book{
		cfg:         cfg,
		env:         env,
		tasks:       map[string]*entry{},
		queue:       newQueue(cfg.ParallelExecution.PriorityLevels, agingInterval),
		results:     map[string]finished{},
		idemRunning: map[string]string{},
		idemDone:    map[string]finished{},
		flights:     map[string]*flight{},
		refs:        map[uint64]*entry{},
		carried:     map[*entry]*entry{},
	}
}

// effects collects what one step asks for.
type effects []Effect

func (fx *effects) add(e ...Effect) { *fx = append(*fx, e...) }

// begin starts a step's effects in the book's buffer, reused from step to
// step so that a task costs no slice allocations: the router performs a
// step's effects before it calls the book again.
func (b *Book) begin() effects { return b.buf[:0] }

// end keeps the buffer (it may have grown) and returns the step's effects.
func (b *Book) end(fx effects) []Effect {
	b.buf = fx
	return fx
}

// Submit admits a task: a refused one is answered at once, a cache hit too;
// an accepted one is coalesced with an identical call in flight, looked up
// in the lower cache tiers, batched, or queued for a worker.
func (b *Book) Submit(now time.Time, msg *messages.SubmitTask, replyTo *actor.PID) []Effect {
	fx := b.begin()
	t := msg.Task
	if t == nil {
		fx.add(Answer{To: replyTo, Result: &messages.TaskResult{Status: messages.TaskFailed,
			Err: &messages.TaskError{Code: messages.CodeBadRequest, Message: "no task"}}})
		return b.end(fx)
	}
	if t.ID == "" {
		t.ID = b.env.NewID()
	}
	t.Submitted = now
	refuse := func(code, format string, args ...any) []Effect {
		res := worker.Failed(t, code, fmt.Sprintf(format, args...))
		fx.add(Answer{To: replyTo, Result: res, Task: t})
		return b.end(fx)
	}
	switch {
	case b.draining:
		return refuse(messages.CodeShuttingDown, "deer is shutting down and accepts no new tasks")
	case b.cfg.Upstreams[t.Upstream].BaseURL == "":
		return refuse(messages.CodeUnknownTarget, "upstream %q is not configured", t.Upstream)
	case t.Priority < 0 || t.Priority >= b.cfg.ParallelExecution.PriorityLevels:
		return refuse(messages.CodeBadRequest, "priority %d is outside 0..%d", t.Priority, b.cfg.ParallelExecution.PriorityLevels-1)
	case b.tasks[t.ID] != nil:
		return refuse(messages.CodeBadRequest, "task id %q is already in use", t.ID)
	}
	idem := IdempotencyKey(t)
	if idem != "" {
		if done, ok := b.idemDone[idem]; ok && now.Before(done.expires) {
			b.accepted(&fx, replyTo, msg.Async, done.result.ID)
			if !msg.Async {
				fx.add(Answer{To: replyTo, Result: copyResult(done.result)})
			}
			return b.end(fx)
		}
		if id, ok := b.idemRunning[idem]; ok {
			if first := b.tasks[id]; first != nil {
				if msg.Async {
					b.accepted(&fx, replyTo, true, id)
				} else {
					first.waiters = append(first.waiters, replyTo)
				}
				return b.end(fx)
			}
		}
	}

	e := &entry{task: t, replyTo: replyTo, async: msg.Async, accepted: now, idemKey: idem}
	e.plan = cache.PlanFor(t, b.cfg)
	if e.plan.Lookup && b.env.L1 != nil {
		if value, _, ok := b.env.L1.Lookup(now, e.plan.Key); ok {
			if res := b.fromCache(t, value, messages.CacheHitL1); res != nil {
				b.accepted(&fx, replyTo, msg.Async, t.ID)
				b.complete(&fx, now, e, res)
				return b.end(fx)
			}
		}
	}
	if f := b.flights[e.plan.Key]; f != nil && e.plan.Coalesce {
		b.accepted(&fx, replyTo, msg.Async, t.ID)
		b.join(&fx, now, f, e)
		return b.end(fx)
	}
	// Tasks looking up L2/L3 count as queued: a miss queues them.
	if waiting := b.queue.len() + b.lookups; waiting >= b.cfg.ParallelExecution.QueueSize {
		return refuse(messages.CodeQueueFull, "the queue holds %d tasks, its limit (parallel_execution.queue_size)", waiting)
	}
	b.tasks[t.ID] = e
	if idem != "" {
		b.idemRunning[idem] = t.ID
	}
	if e.plan.Coalesce {
		f := &flight{key: e.plan.Key, plan: e.plan, leader: e}
		b.flights[f.key] = f
		e.flight = f
	}
	b.accepted(&fx, replyTo, msg.Async, t.ID)
	if e.plan.Lookup {
		b.setState(e, stateLookup)
		e.ref = b.nextRef()
		b.refs[e.ref] = e
		b.setDue(&fx, e, now.Add(lookupTimeout))
		fx.add(LookupCache{Ref: e.ref, Key: e.plan.Key})
		return b.end(fx)
	}
	b.route(&fx, now, e)
	return b.end(fx)
}

func (b *Book) nextRef() uint64 {
	b.refSeq++
	return b.refSeq
}

func (b *Book) accepted(fx *effects, to *actor.PID, async bool, id string) {
	if async && to != nil {
		fx.add(Accepted{To: to, ID: id})
	}
}

// fromCache turns a stored answer into t's result; nil when the value does
// not decode (it then counts as a miss) or does not fit the request (a
// stream entry for a buffered request cannot happen: the key says which).
func (b *Book) fromCache(t *messages.Task, value []byte, label string) *messages.TaskResult {
	a, err := cache.DecodeAnswer(value)
	if err != nil || a.Stream != t.Stream {
		return nil
	}
	res := a.Result(t.ID)
	res.Cache = label
	return res
}

// route sends an accepted task on: into the batcher when it is an embedding
// call on a batching upstream, else into the queue.
func (b *Book) route(fx *effects, now time.Time, e *entry) {
	if it, ok := b.batchable(e); ok {
		b.setState(e, stateBatching)
		e.ref = b.nextRef()
		b.refs[e.ref] = e
		it.Ref = e.ref
		b.setDue(fx, e, now.Add(TaskTimeout(e.task, b.cfg)))
		fx.add(it)
		return
	}
	b.enqueue(fx, now, e, false)
}

// enqueue puts e in the queue (at the head of its level when front) and
// dispatches.
func (b *Book) enqueue(fx *effects, now time.Time, e *entry, front bool) {
	b.setState(e, messages.TaskQueued)
	e.slot, e.due = nil, time.Time{}
	it := &e.queued
	*it = item{id: e.task.ID, level: b.level(e.task), enqueued: e.accepted}
	if front {
		b.queue.pushFront(it)
	} else {
		b.queue.push(it)
	}
	b.dispatch(fx, now)
}

// level is the queue level of t: its priority, or the one FIFO level when
// advanced optimization is off.
func (b *Book) level(t *messages.Task) int {
	if !b.cfg.EnableAdvancedOptimization {
		return 0
	}
	return t.Priority
}

// dispatch hands queued tasks to idle workers, most urgent first.
func (b *Book) dispatch(fx *effects, now time.Time) {
	for b.queue.len() > 0 {
		s := b.idleWorker()
		if s == nil {
			return
		}
		it := b.queue.pop(now)
		e := b.tasks[it.id]
		if e == nil || e.state != messages.TaskQueued {
			continue
		}
		b.setState(e, messages.TaskRunning)
		e.slot, e.started = s, now
		b.workers.take(s, it.id)
		timeout := TaskTimeout(e.task, b.cfg)
		fx.add(Run{&Dispatch{Worker: s, Message: worker.Run{Task: e.task, Timeout: timeout}}})
		b.setDue(fx, e, now.Add(timeout+watchdogGrace))
	}
}

// idleWorker picks a free worker: with load balancing the one idle longest
// (spreading load evenly), else the lowest-numbered (a plain pool).
func (b *Book) idleWorker() *slot {
	if b.cfg.EnableAdvancedOptimization && b.cfg.ParallelExecution.LoadBalancing {
		return b.workers.longestIdle()
	}
	return b.workers.lowestIdle()
}

// setDue makes the watchdog act on e at due, arming it earlier if needed.
func (b *Book) setDue(fx *effects, e *entry, due time.Time) {
	e.due = due
	if b.watchdogDue.IsZero() || due.Before(b.watchdogDue) {
		b.watchdogDue = due
		fx.add(ArmWatchdog{At: due})
	}
}

// Finished records a worker's result for task id. idle says the worker is
// free again (false while a streamed answer is still being read).
func (b *Book) Finished(now time.Time, msg *worker.Finished, s *slot) []Effect {
	fx := b.begin()
	if s != nil && msg.Idle && s.task == msg.ID {
		b.workers.free(s)
	}
	e := b.tasks[msg.ID]
	if e == nil || e.slot == nil || s == nil || e.slot != s {
		// Answered already (cancelled, timed out by the watchdog) or a late
		// report from a replaced worker: only the worker's freedom matters.
		if msg.Result.Stream != nil {
			fx.add(CloseStream{Stream: msg.Result.Stream})
		}
		b.dispatch(&fx, now)
		return b.end(fx)
	}
	switch {
	case e.cancelled != nil:
		b.complete(&fx, now, e, cancelledAfter(&fx, e.cancelled, msg.Result))
	case e.batch != nil:
		b.combinedFinished(&fx, now, e, msg.Result)
	default:
		b.complete(&fx, now, e, msg.Result)
	}
	b.dispatch(&fx, now)
	return b.end(fx)
}

// cancelledAfter is a cancelled task's answer once its worker reported:
// what the call got to do (attempts, time and last status from the
// upstream), whatever the call's own outcome (a call that completed as the
// cancel arrived is still cancelled, as DELETE said; its stream is closed).
func cancelledAfter(fx *effects, res, got *messages.TaskResult) *messages.TaskResult {
	res.Attempts, res.Upstream, res.UpstreamStatus = got.Attempts, got.Upstream, got.UpstreamStatus
	if got.Stream != nil {
		fx.add(CloseStream{Stream: got.Stream})
	}
	return res
}

// WorkerIdle frees a worker whose streamed answer was closed.
func (b *Book) WorkerIdle(now time.Time, s *slot, id string) []Effect {
	fx := b.begin()
	if s != nil && s.task == id {
		b.workers.free(s)
	}
	b.dispatch(&fx, now)
	return b.end(fx)
}

// complete answers task e with res and, when e leads a flight, every
// follower too; it stores a cacheable 2xx answer.
func (b *Book) complete(fx *effects, now time.Time, e *entry, res *messages.TaskResult) {
	if res.Cache == messages.CacheMiss && e.task.Cache == messages.CacheRefresh {
		res.Cache = messages.CacheRefresh
	}
	f := e.flight
	if f == nil || f.leader != e {
		b.storeIfWanted(fx, e.plan, res)
		b.finish(fx, now, e, res)
		return
	}
	delete(b.flights, f.key)
	e.flight = nil
	if res.Stream != nil && (len(f.followers) > 0 || f.plan.Store) {
		b.shareStream(fx, now, f, e, res)
		return
	}
	b.storeIfWanted(fx, f.plan, res)
	followers := f.followers
	f.followers = nil
	if e.detached {
		b.forget(e)
	} else {
		b.finish(fx, now, e, res)
	}
	for _, fe := range followers {
		fe.flight = nil
		c := copyResult(res)
		c.Cache = messages.CacheCoalesced
		b.coalesced++
		b.finish(fx, now, fe, c)
	}
}

// shareStream fans a streamed answer out to the flight's callers; the flight
// stays open (under its key) until the stream ends, so later identical
// tasks join it from the first byte.
func (b *Book) shareStream(fx *effects, now time.Time, f *flight, leader *entry, res *messages.TaskResult) {
	b.streams++
	f.seq, f.status, f.header = b.streams, res.UpstreamStatus, res.Header
	f.stream = b.env.Share(res.Stream, f.seq)
	f.leader = nil
	b.flights[f.key] = f
	followers := f.followers
	f.followers = nil
	if leader.detached {
		b.forget(leader)
	} else if r, ok := f.stream.Join(); ok {
		c := copyResult(res)
		c.Stream = r
		b.finish(fx, now, leader, c)
	} else {
		b.finish(fx, now, leader, worker.Failed(leader.task, messages.CodeUpstream, "the shared stream ended before it could be read"))
	}
	for _, fe := range followers {
		fe.flight = nil
		b.joinStream(fx, now, f, fe, res)
	}
}

// joinStream answers e with a reader of f's shared stream.
func (b *Book) joinStream(fx *effects, now time.Time, f *flight, e *entry, like *messages.TaskResult) {
	r, ok := f.stream.Join()
	if !ok {
		b.finish(fx, now, e, worker.Failed(e.task, messages.CodeUpstream, "the shared stream ended before it could be read"))
		return
	}
	c := &messages.TaskResult{Status: messages.TaskSucceeded, UpstreamStatus: f.status, Header: f.header,
		Stream: r, Cache: messages.CacheCoalesced}
	if like != nil {
		c.Attempts, c.Upstream = like.Attempts, like.Upstream
	}
	b.coalesced++
	b.finish(fx, now, e, c)
}

// StreamEnded closes the flight of a shared stream and stores the answer
// when the stream was complete.
func (b *Book) StreamEnded(now time.Time, msg *StreamEnded) []Effect {
	fx := b.begin()
	for key, f := range b.flights {
		if f.stream == nil || f.seq != msg.Seq {
			continue
		}
		delete(b.flights, key)
		if msg.Complete && f.plan.Store && f.status/100 == 2 {
			fx.add(StoreCache{Key: key, TTL: f.plan.TTL, Answer: cache.Answer{
				Status: f.status, Header: f.header, Body: msg.Data, Chunks: msg.Chunks, Stream: true,
			}})
		}
		break
	}
	return b.end(fx)
}

// storeIfWanted writes a successful buffered answer to the cache.
func (b *Book) storeIfWanted(fx *effects, plan cache.Plan, res *messages.TaskResult) {
	fresh := res.Cache == messages.CacheMiss || res.Cache == messages.CacheRefresh
	if !plan.Store || !fresh || res.Status != messages.TaskSucceeded || res.UpstreamStatus/100 != 2 || res.Stream != nil {
		return
	}
	fx.add(StoreCache{Key: plan.Key, Answer: cache.AnswerOf(res), TTL: plan.TTL, Replace: res.Cache == messages.CacheRefresh})
}

// join makes e a follower of flight f: it gets f's answer when it comes, or
// at once a reader of the stream f is relaying.
func (b *Book) join(fx *effects, now time.Time, f *flight, e *entry) {
	b.tasks[e.task.ID] = e
	if e.idemKey != "" {
		b.idemRunning[e.idemKey] = e.task.ID
	}
	if f.stream != nil {
		b.joinStream(fx, now, f, e, nil)
		return
	}
	b.setState(e, stateFollowing)
	e.flight = f
	if e.plan.Store && !f.plan.Store {
		// A flight led by a no-store task still stores for a follower that
		// wants the answer kept.
		f.plan.Store, f.plan.TTL = true, e.plan.TTL
	}
	f.followers = append(f.followers, e)
	b.setDue(fx, e, now.Add(TaskTimeout(e.task, b.cfg)))
}

// leave takes follower e out of its flight.
func leave(f *flight, e *entry) {
	for i, fe := range f.followers {
		if fe == e {
			f.followers = append(f.followers[:i:i], f.followers[i+1:]...)
			break
		}
	}
	e.flight = nil
}

// setState moves e to state s, keeping count of the lookups in flight.
func (b *Book) setState(e *entry, s string) {
	if e.state == stateLookup {
		b.lookups--
	}
	if s == stateLookup {
		b.lookups++
	}
	e.state = s
}

// forget drops e without answering it (its caller was answered already).
func (b *Book) forget(e *entry) {
	b.setState(e, "")
	delete(b.tasks, e.task.ID)
}

// finish answers every caller of e once and forgets the task.
func (b *Book) finish(fx *effects, now time.Time, e *entry, res *messages.TaskResult) {
	t := e.task
	b.forget(e)
	if e.ref != 0 {
		delete(b.refs, e.ref)
		e.ref = 0
	}
	res.ID = t.ID
	if !e.started.IsZero() {
		res.Queue = e.started.Sub(e.accepted)
	} else {
		res.Queue = now.Sub(e.accepted)
	}
	res.Latency = now.Sub(e.accepted)

	if e.idemKey != "" {
		delete(b.idemRunning, e.idemKey)
		if res.Status == messages.TaskSucceeded && res.Stream == nil {
			b.idemDone[e.idemKey] = finished{result: res, expires: now.Add(ResultTTL)}
		}
	}
	if e.async || e.idemKey != "" {
		b.results[t.ID] = finished{result: res, expires: now.Add(ResultTTL), owner: t.Tenant}
	}
	if e.async {
		fx.add(Answer{Result: res, Task: t}) // kept for GET /v1/tasks
	} else {
		fx.add(Answer{To: e.replyTo, Result: res, Task: t})
	}
	for _, w := range e.waiters {
		fx.add(Answer{To: w, Result: copyResult(res)})
	}
	if b.draining {
		b.drainedFinished++
	}
	b.checkDrained(fx)
}

// CacheLookedUp takes cache/l2's (or l3's) answer for a lookup: a hit
// answers the task (and its flight), a miss sends it on to the upstream.
func (b *Book) CacheLookedUp(now time.Time, msg *messages.CacheLookedUp) []Effect {
	fx := b.begin()
	e := b.refs[msg.Ref]
	if e == nil || e.state != stateLookup {
		return b.end(fx) // answered meanwhile, or the lookup timed out
	}
	delete(b.refs, msg.Ref)
	e.ref = 0
	if msg.Found {
		label := messages.CacheHitL2
		if msg.Tier == messages.TierL3 {
			label = messages.CacheHitL3
		}
		if res := b.fromCache(e.task, msg.Value, label); res != nil {
			b.complete(&fx, now, e, res)
			b.dispatch(&fx, now)
			return b.end(fx)
		}
	}
	b.route(&fx, now, e)
	return b.end(fx)
}

// owned is task id when tenant submitted it: another tenant's task is
// unknown to it, as are the internal combined calls of embedding batches.
func (b *Book) owned(id, tenant string) *entry {
	e := b.tasks[id]
	if e == nil || e.detached || e.batch != nil || e.task.Tenant != tenant {
		return nil
	}
	return e
}

// result is task id's kept result when tenant may read it.
func (b *Book) result(now time.Time, id, tenant string) (finished, bool) {
	done, ok := b.results[id]
	if !ok || done.owner != tenant || !now.Before(done.expires) {
		return finished{}, false
	}
	return done, true
}

// Cancel withdraws a task its owner cancels (or whose caller went away). A
// queued one is answered at once; a running one once its worker has
// stopped, so that its answer tells the attempts made. A leader whose flight
// has followers keeps running for them, detached from its caller.
func (b *Book) Cancel(now time.Time, msg *messages.CancelTask) ([]Effect, *messages.TaskCancelled) {
	fx := b.begin()
	id := msg.ID
	e := b.owned(id, msg.Tenant)
	if e == nil {
		state := ""
		if done, ok := b.result(now, id, msg.Tenant); ok {
			state = done.result.Status
		}
		return b.end(fx), &messages.TaskCancelled{ID: id, Found: false, State: state}
	}
	cancelled := &messages.TaskCancelled{ID: id, Found: true, State: messages.TaskFailed}
	if e.cancelled != nil {
		return b.end(fx), cancelled // its worker is stopping already
	}
	res := worker.Failed(e.task, messages.CodeCancelled, "the task was cancelled")
	if msg.ClientGone {
		res.Err = &messages.TaskError{Code: messages.CodeClientClosed, Message: "the caller went away before the answer"}
	}
	if f := e.flight; e.state == messages.TaskRunning && e.slot != nil && (f == nil || len(f.followers) == 0) {
		if f != nil {
			delete(b.flights, f.key) // later identical tasks make a call of their own
			e.flight = nil
		}
		e.cancelled = res
		fx.add(CancelRun{Worker: e.slot, ID: id})
		b.setDue(&fx, e, now.Add(watchdogGrace))
		return b.end(fx), cancelled
	}
	b.withdraw(&fx, now, e, res)
	b.dispatch(&fx, now)
	return b.end(fx), cancelled
}

// withdraw answers e with res before its work is done (cancelled, timed
// out, shutting down) and stops what it no longer needs.
func (b *Book) withdraw(fx *effects, now time.Time, e *entry, res *messages.TaskResult) {
	if f := e.flight; f != nil && f.leader != e {
		leave(f, e)
		b.finish(fx, now, e, res)
		b.abandonIfAlone(fx, now, f)
		return
	}
	if f := e.flight; f != nil && len(f.followers) > 0 {
		// Others wait for this call: answer the caller, keep the work.
		state := e.state
		b.finish(fx, now, e, res)
		b.setState(e, state)
		b.tasks[e.task.ID] = e
		e.detached = true
		if e.ref != 0 {
			b.refs[e.ref] = e // finish forgot it; the lookup or batch item still counts
		}
		return
	}
	if f := e.flight; f != nil {
		delete(b.flights, f.key)
		e.flight = nil
	}
	b.stop(fx, e)
	b.finish(fx, now, e, res)
	b.leftCall(fx, e)
}

// stop ends whatever e is doing: its queue place or its worker's call.
func (b *Book) stop(fx *effects, e *entry) {
	switch e.state {
	case messages.TaskQueued:
		b.queue.remove(e.task.ID)
	case messages.TaskRunning:
		if e.slot != nil {
			fx.add(CancelRun{Worker: e.slot, ID: e.task.ID})
		}
	}
}

// abandonIfAlone stops a detached leader's work once no follower is left.
func (b *Book) abandonIfAlone(fx *effects, now time.Time, f *flight) {
	l := f.leader
	if l == nil || !l.detached || len(f.followers) > 0 {
		return
	}
	delete(b.flights, f.key)
	l.flight = nil
	b.stop(fx, l)
	b.forget(l)
	if l.ref != 0 {
		delete(b.refs, l.ref)
	}
	b.leftCall(fx, l)
	b.checkDrained(fx)
}

// Status says where a task is, to its owner; to anyone else it is unknown.
func (b *Book) Status(now time.Time, q *messages.TaskStatusQuery) *messages.TaskStatusReport {
	id := q.ID
	if e := b.owned(id, q.Tenant); e != nil {
		return &messages.TaskStatusReport{ID: id, Found: true, State: b.publicState(e)}
	}
	if done, ok := b.result(now, id, q.Tenant); ok {
		return &messages.TaskStatusReport{ID: id, Found: true, State: done.result.Status, Result: copyResult(done.result)}
	}
	return &messages.TaskStatusReport{ID: id, Found: false}
}

// publicState maps the internal states onto SPEC's queued and running.
func (b *Book) publicState(e *entry) string {
	switch e.state {
	case messages.TaskRunning:
		return messages.TaskRunning
	case stateFollowing:
		if e.flight != nil && e.flight.leader != nil {
			return b.publicState(e.flight.leader)
		}
		return messages.TaskRunning
	}
	return messages.TaskQueued
}

// WorkerLost puts back the task a dead worker held, or fails it after it
// has lost maxCrashes workers: every accepted task gets exactly one answer.
func (b *Book) WorkerLost(now time.Time, id, why string) []Effect {
	fx := b.begin()
	b.taskLost(&fx, now, id, why)
	b.dispatch(&fx, now)
	return b.end(fx)
}

func (b *Book) taskLost(fx *effects, now time.Time, id, why string) {
	e := b.tasks[id]
	if e == nil || e.state != messages.TaskRunning {
		return
	}
	if e.cancelled != nil {
		// Cancelled already: nothing to run again.
		b.failWork(fx, now, e, e.cancelled)
		return
	}
	e.crashes++
	if e.crashes >= maxCrashes {
		b.failWork(fx, now, e, worker.Failed(e.task, messages.CodeInternal,
			fmt.Sprintf("the task crashed its worker %d times (%s)", e.crashes, why)))
		return
	}
	fx.add(Requeued{ID: id, Crashes: e.crashes, Why: why})
	b.enqueue(fx, now, e, true)
}

// failWork ends e's work with a failure: every task that waited on it is
// answered with it (a combined call's items, a flight's followers).
func (b *Book) failWork(fx *effects, now time.Time, e *entry, res *messages.TaskResult) {
	if e.batch != nil {
		b.combinedFinished(fx, now, e, res)
		return
	}
	b.complete(fx, now, e, res)
}

// DeliveryFailed fails a task whose Run crashed its worker repeatedly.
func (b *Book) DeliveryFailed(now time.Time, msg *messages.DeliveryFailed) []Effect {
	fx := b.begin()
	run, ok := msg.Message.(*worker.Run)
	if !ok {
		return b.end(fx)
	}
	e := b.tasks[run.Task.ID]
	if e == nil {
		return b.end(fx)
	}
	if s := e.slot; s != nil && s.task == e.task.ID {
		b.workers.free(s)
	}
	b.failWork(&fx, now, e, worker.Failed(e.task, messages.CodeInternal,
		fmt.Sprintf("the task crashed its worker %d times: %s", msg.Attempts, msg.Reason)))
	b.dispatch(&fx, now)
	return b.end(fx)
}

// Watchdog acts on every entry whose due time has come: a running task past
// its timeout is answered timeout and its wedged worker replaced; a cache
// lookup nobody answered counts as a miss; a follower or a batched item past
// its own timeout is answered timeout without touching the shared work.
func (b *Book) Watchdog(now time.Time, due time.Time) []Effect {
	fx := b.begin()
	if b.watchdogDue.IsZero() || !due.Equal(b.watchdogDue) {
		return b.end(fx) // a timer that was replaced
	}
	b.watchdogDue = time.Time{}
	var next time.Time
	for _, e := range b.sortedEntries() {
		if e.due.IsZero() || b.tasks[e.task.ID] != e {
			continue
		}
		if now.Before(e.due) {
			if next.IsZero() || e.due.Before(next) {
				next = e.due
			}
			continue
		}
		e.due = time.Time{}
		b.overdue(&fx, now, e)
		if !e.due.IsZero() && (next.IsZero() || e.due.Before(next)) {
			next = e.due
		}
	}
	if !next.IsZero() && (b.watchdogDue.IsZero() || next.Before(b.watchdogDue)) {
		b.watchdogDue = next
		fx.add(ArmWatchdog{At: next})
	}
	b.dispatch(&fx, now)
	return b.end(fx)
}

func (b *Book) overdue(fx *effects, now time.Time, e *entry) {
	timedOut := func() *messages.TaskResult {
		return worker.Failed(e.task, messages.CodeTimeout,
			fmt.Sprintf("the task ran longer than its timeout of %v", TaskTimeout(e.task, b.cfg)))
	}
	switch {
	case e.state == stateLookup:
		delete(b.refs, e.ref)
		e.ref = 0
		b.route(fx, now, e)
	case e.state == messages.TaskRunning:
		s := e.slot
		res, why := e.cancelled, "did not stop within "+watchdogGrace.String()+" of its task's cancel"
		if res == nil {
			res, why = timedOut(), "did not report past the task timeout"
		}
		b.failWork(fx, now, e, res)
		if s != nil && s.task == e.task.ID {
			// Its call is wedged: the slot gets a new worker, free at once.
			b.workers.free(s)
			fx.add(ReplaceWorker{Worker: s, Why: why})
		}
	case e.detached:
		// A leader past its own timeout whose caller left: its followers
		// share its fate rather than wait on with nobody to serve them.
		if e.ref != 0 {
			delete(b.refs, e.ref)
			e.ref = 0
		}
		b.failWork(fx, now, e, timedOut())
		b.leftCall(fx, e)
	case e.state == stateFollowing || e.state == stateBatching:
		b.withdraw(fx, now, e, timedOut())
	}
}

// sortedEntries lists the tasks in acceptance order, so that what a step
// does does not depend on map order (scenario output is deterministic).
func (b *Book) sortedEntries() []*entry {
	out := make([]*entry, 0, len(b.tasks))
	for _, e := range b.tasks {
		out = append(out, e)
	}
	sortEntries(out)
	return out
}

// Drain stops admission and answers once every task is done.
func (b *Book) Drain(now time.Time, from *actor.PID) []Effect {
	fx := b.begin()
	b.draining = true
	if from != nil {
		b.drainWaiters = append(b.drainWaiters, from)
	}
	b.checkDrained(&fx)
	return b.end(fx)
}

// DrainExpired answers what is left with shutting_down.
func (b *Book) DrainExpired(now time.Time) []Effect {
	fx := b.begin()
	for _, e := range b.sortedEntries() {
		if b.tasks[e.task.ID] != e {
			continue
		}
		b.stop(&fx, e)
		if e.detached {
			b.forget(e)
			continue
		}
		b.abandoned++
		if e.flight != nil {
			if e.flight.leader != e {
				leave(e.flight, e)
			} else {
				delete(b.flights, e.flight.key)
			}
			e.flight = nil
		}
		if e.batch != nil {
			continue // internal: its items are answered on their own
		}
		res := e.cancelled
		if res == nil {
			res = worker.Failed(e.task, messages.CodeShuttingDown, "deer shut down before the task finished")
		}
		b.finish(&fx, now, e, res)
	}
	for _, e := range b.tasks {
		delete(b.tasks, e.task.ID) // combined calls
	}
	clear(b.carried)
	b.queue.drain()
	b.checkDrained(&fx)
	return b.end(fx)
}

func (b *Book) checkDrained(fx *effects) {
	if !b.draining || len(b.tasks) > 0 || len(b.drainWaiters) == 0 {
		return
	}
	fx.add(Drained{To: b.drainWaiters, Finished: b.drainedFinished - b.abandoned, Abandoned: b.abandoned})
	b.drainWaiters = nil
}

// Prune forgets results past their time.
func (b *Book) Prune(now time.Time) {
	for id, f := range b.results {
		if !now.Before(f.expires) {
			delete(b.results, id)
		}
	}
	for k, f := range b.idemDone {
		if !now.Before(f.expires) {
			delete(b.idemDone, k)
		}
	}
}

// Configure takes the configuration now in force; more workers or levels
// may take queued tasks now.
func (b *Book) Configure(now time.Time, cfg *conf.Config) []Effect {
	fx := b.begin()
	b.cfg = cfg
	b.queue.resize(cfg.ParallelExecution.PriorityLevels)
	b.dispatch(&fx, now)
	return b.end(fx)
}

// Restarted forgets the workers of the router's previous life and puts the
// tasks they were running back at the head of the queue. The watchdog timer
// died with the old actor: it is armed again for what is pending.
func (b *Book) Restarted(now time.Time) []Effect {
	fx := b.begin()
	b.workers = workerSet{}
	b.lives++
	b.watchdogDue = time.Time{}
	entries := b.sortedEntries()
	for i := len(entries) - 1; i >= 0; i-- { // pushed to the front: last first keeps their order
		switch e := entries[i]; {
		case e.state != messages.TaskRunning:
		case e.cancelled != nil:
			b.finish(&fx, now, e, e.cancelled) // its worker is gone: nothing more to learn
		default:
			b.enqueue(&fx, now, e, true)
		}
	}
	for _, e := range b.sortedEntries() {
		if !e.due.IsZero() {
			b.setDue(&fx, e, e.due)
		}
	}
	return b.end(fx)
}

// Retire takes the workers beyond n out of the set; their running tasks go
// back to the queue.
func (b *Book) Retire(now time.Time, n int) ([]*slot, []Effect) {
	fx := b.begin()
	retired := b.workers.shrink(n)
	for _, s := range retired {
		if s.busy {
			b.taskLost(&fx, now, s.task, "its worker was retired by a smaller max_workers")
		}
	}
	return retired, fx
}

// IdempotencyKey scopes a client's key to the upstream and to the caller's
// credential (Tenant): the same key from another credential is another
// request, never answered with the first caller's result. Streams cannot be
// replayed, so they are never deduplicated.
func IdempotencyKey(t *messages.Task) string {
	if t.IdempotencyKey == "" || t.Stream {
		return ""
	}
	return t.Upstream + "\x00" + t.Tenant + "\x00" + t.IdempotencyKey
}

// Len is the number of tasks accepted and not yet answered.
func (b *Book) Len() int { return len(b.tasks) }
