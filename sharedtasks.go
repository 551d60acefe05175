package deer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/router"
	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/messages"
)

// sharedTasks makes a cluster node's tasks visible to the other nodes
// through Redis (issue 13): the records and claims of internal/cluster's
// tasks.go. The router's book stays local and pure; this is shell around
// it, used by Runtime.submit, TaskStatus and CancelTask, and by the router
// through router.Publisher. nil on a single node.
//
// Redis is never on the path of a task without an Idempotency-Key that is
// not async, and its failures never fail a task: an operation that fails
// is counted, the outage is logged once, and the node answers from its own
// book as a single node does. While Redis is down, synchronous operations
// are skipped for retryDown after each failure, so that a Redis that does
// not answer costs a request at most once a second its timeout.
type sharedTasks struct {
	rc   *redis.Client
	node string
	// gone says a node has left the cluster (membership); a repeat does not
	// wait on its claim.
	gone  func(node string) bool
	clock clock.Clock
	log   zerolog.Logger

	writes chan cluster.TaskWrite // to the writer goroutine, in order
	quit   chan struct{}
	done   chan struct{}
	cancel *redis.PubSub // this node's cancel requests
	stop   sync.Once

	writesFailed *vm.Counter
	readsFailed  *vm.Counter
	remote       *vm.Counter
	waiting      atomic.Int64 // repeats waiting on another node's task

	mu      sync.Mutex
	down    bool
	retryAt time.Time
}

const (
	// sharedOpTimeout bounds a synchronous Redis operation on a request's
	// path (the client's own I/O timeout is 500 ms).
	sharedOpTimeout = 250 * time.Millisecond
	// retryDown is how long synchronous operations are skipped after one
	// failed: the request is served locally at once.
	retryDown = time.Second
	// claimMargin is added to a task's timeout for how long its
	// Idempotency-Key claim lives while it runs: time in the queue. A node
	// that dies with the task leaves a claim that lapses after this.
	claimMargin = 30 * time.Second
	// writeQueue bounds the writes waiting for Redis; beyond, a write is
	// dropped and counted rather than the router blocked.
	writeQueue = 4096
	// writeBatch is the most writes sent in one pipeline.
	writeBatch = 128
	// pollFirst and pollMax pace a repeat waiting on another node's task.
	pollFirst = 5 * time.Millisecond
	pollMax   = 200 * time.Millisecond
)

func newSharedTasks(rc *redis.Client, members *cluster.Members, clk clock.Clock, log zerolog.Logger, set *vm.Set) *sharedTasks {
	s := &sharedTasks{
		rc: rc, node: members.NodeID(), gone: members.Gone, clock: clk, log: log.With().Str("component", "shared-tasks").Logger(),
		writes:       make(chan cluster.TaskWrite, writeQueue),
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
		writesFailed: set.GetOrCreateCounter("deer_cluster_task_writes_failed_total"),
		readsFailed:  set.GetOrCreateCounter("deer_cluster_task_reads_failed_total"),
		remote:       set.GetOrCreateCounter("deer_cluster_task_remote_answers_total"),
	}
	set.GetOrCreateGauge("deer_cluster_task_repeats_waiting", func() float64 { return float64(s.waiting.Load()) })
	go s.writer()
	return s
}

// listenCancels delivers other nodes' DELETE of this node's tasks to
// cancel. go-redis resubscribes by itself after a reconnect.
func (s *sharedTasks) listenCancels(cancel func(id, tenant string)) {
	s.cancel = s.rc.Subscribe(context.Background(), cluster.CancelChannel(s.node))
	ch := s.cancel.Channel()
	go func() {
		for msg := range ch {
			if id, tenant, ok := cluster.ParseCancel(msg.Payload); ok {
				cancel(id, tenant)
			}
		}
	}()
}

// close stops listening and flushes the queued writes (within ctx).
func (s *sharedTasks) close(ctx context.Context) {
	s.stop.Do(func() {
		if s.cancel != nil {
			_ = s.cancel.Close()
		}
		close(s.quit)
		select {
		case <-s.done:
		case <-ctx.Done():
		}
	})
}

// usable says whether a synchronous operation should try Redis now.
func (s *sharedTasks) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.down || !s.clock.Now().Before(s.retryAt)
}

// failed counts a failed operation (in c) and logs the outage's start,
// once.
func (s *sharedTasks) failed(c *vm.Counter, op string, err error) {
	s.outage(op, err)
	c.Inc()
}

func (s *sharedTasks) outage(op string, err error) {
	s.mu.Lock()
	was := s.down
	s.down, s.retryAt = true, s.clock.Now().Add(retryDown)
	s.mu.Unlock()
	if !was {
		s.log.Warn().Err(err).Str("op", op).Msg("redis unreachable: tasks are answered by this node alone until it is back")
	}
}

// reached notes a successful operation, logging the end of an outage.
func (s *sharedTasks) reached() {
	s.mu.Lock()
	was := s.down
	s.down = false
	s.mu.Unlock()
	if was {
		s.log.Info().Msg("redis reachable again: tasks shared with the cluster")
	}
}

func (s *sharedTasks) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, sharedOpTimeout)
}

// record is t's record in state, on this node.
func (s *sharedTasks) record(t *messages.Task, state string) cluster.TaskRecord {
	return cluster.TaskRecord{ID: t.ID, State: state, Node: s.node, Owner: t.Tenant, Updated: s.clock.Now()}
}

// accepted records an async task the router queued, before its caller
// hears 202: whichever node that caller asks next finds it.
func (s *sharedTasks) accepted(ctx context.Context, t *messages.Task) {
	if !s.usable() {
		s.writesFailed.Inc()
		return
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := cluster.PutTaskIfAbsent(ctx, s.rc, s.record(t, messages.TaskQueued), router.ResultTTL); err != nil {
		s.failed(s.writesFailed, "accept", err)
		return
	}
	s.reached()
}

var _ router.Publisher = (*sharedTasks)(nil)

// Running implements router.Publisher.
func (s *sharedTasks) Running(t *messages.Task) {
	s.enqueue(s.record(t, messages.TaskRunning), "", true)
}

// Finished implements router.Publisher. The record is encoded here, on the
// router's goroutine: res belongs to its caller once this returns.
func (s *sharedTasks) Finished(t *messages.Task, res *messages.TaskResult) {
	rec := s.record(t, res.Status)
	rec.Result = cluster.RecordOf(res)
	s.enqueue(rec, router.IdempotencyKey(t), res.Status == messages.TaskSucceeded)
}

func (s *sharedTasks) enqueue(rec cluster.TaskRecord, scoped string, keep bool) {
	w, err := cluster.NewTaskWrite(rec, router.ResultTTL)
	if err != nil {
		s.writesFailed.Inc()
		return
	}
	w.Scoped, w.Claim, w.Keep = scoped, cluster.Claim{Node: s.node, ID: rec.ID}, keep
	select {
	case s.writes <- w:
	default:
		s.writesFailed.Inc() // Redis is slower than the tasks: the router comes first
	}
}

// writer performs the queued writes in order, batching what has queued up
// into one pipeline; on close it flushes what is left.
func (s *sharedTasks) writer() {
	defer close(s.done)
	batch := make([]cluster.TaskWrite, 0, writeBatch)
	for {
		select {
		case w := <-s.writes:
			batch = s.fill(append(batch[:0], w))
			s.flush(batch)
		case <-s.quit:
			for {
				batch = s.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				if !s.usable() {
					s.writesFailed.Add(len(batch)) // Redis is down: do not hold up the stop
					continue
				}
				s.flush(batch)
			}
		}
	}
}

func (s *sharedTasks) fill(batch []cluster.TaskWrite) []cluster.TaskWrite {
	for len(batch) < writeBatch {
		select {
		case w := <-s.writes:
			batch = append(batch, w)
		default:
			return batch
		}
	}
	return batch
}

func (s *sharedTasks) flush(batch []cluster.TaskWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := cluster.WriteTasks(ctx, s.rc, batch); err != nil {
		s.writesFailed.Add(len(batch))
		s.outage("write", err)
		return
	}
	s.reached()
}

// get reads task id's record for tenant; false when there is none, it is
// another tenant's, or Redis did not answer.
func (s *sharedTasks) get(ctx context.Context, id, tenant string) (cluster.TaskRecord, bool) {
	if !s.usable() {
		s.readsFailed.Inc()
		return cluster.TaskRecord{}, false
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	rec, found, err := cluster.GetTask(ctx, s.rc, id)
	if err != nil {
		s.failed(s.readsFailed, "read", err)
		return cluster.TaskRecord{}, false
	}
	s.reached()
	if !found || rec.Owner != tenant {
		return cluster.TaskRecord{}, false
	}
	return rec, true
}

// status answers GET for a task this node's router does not know.
func (s *sharedTasks) status(ctx context.Context, id, tenant string) *messages.TaskStatusReport {
	rec, ok := s.get(ctx, id, tenant)
	if !ok {
		return &messages.TaskStatusReport{ID: id}
	}
	s.remote.Inc()
	rep := &messages.TaskStatusReport{ID: id, Found: true, State: rec.State}
	if rec.Finished() {
		rep.Result = rec.Result.Result(id)
	}
	return rep
}

// cancelTask answers DELETE for a task this node's router does not know: a
// finished one is reported as such; a queued or running one is cancelled
// by its node, asked over pub/sub.
func (s *sharedTasks) cancelTask(ctx context.Context, id, tenant string) *messages.TaskCancelled {
	rec, ok := s.get(ctx, id, tenant)
	switch {
	case !ok || rec.Node == s.node:
		// Ours but not in the book: a record whose last write was lost.
		return &messages.TaskCancelled{ID: id}
	case rec.Finished():
		return &messages.TaskCancelled{ID: id, State: rec.State}
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	n, err := cluster.PublishCancel(octx, s.rc, rec.Node, id, tenant)
	if err != nil {
		s.failed(s.writesFailed, "cancel", err)
	}
	if n == 0 {
		// Nobody on that node listens: it is gone or cut off from Redis.
		return &messages.TaskCancelled{ID: id, State: rec.State, Node: rec.Node, Unreachable: true}
	}
	s.remote.Inc()
	return &messages.TaskCancelled{ID: id, Found: true, State: messages.TaskFailed, Node: rec.Node}
}

// repeat looks up task's Idempotency-Key in the cluster. When another node
// holds it, the answer is that node's first task's (answered true): its
// result when stored; else an async caller gets its id, a sync one waits
// for it. Otherwise the key is now task's (or Redis is out of reach) and
// the local router runs the task, answering repeats on this node itself.
func (s *sharedTasks) repeat(ctx context.Context, t *messages.Task, async bool, timeout time.Duration) (any, bool, error) {
	scoped := router.IdempotencyKey(t)
	if scoped == "" {
		return nil, false, nil
	}
	if !s.usable() {
		s.readsFailed.Inc()
		return nil, false, nil
	}
	octx, cancel := s.opContext(ctx)
	held, claimed, err := cluster.ClaimIdempotency(octx, s.rc, scoped, cluster.Claim{Node: s.node, ID: t.ID}, timeout+claimMargin)
	cancel()
	if err != nil {
		s.failed(s.writesFailed, "claim", err)
		return nil, false, nil
	}
	s.reached()
	if claimed || held.Node == s.node {
		return nil, false, nil // the local book knows the first task
	}
	if s.gone(held.Node) {
		// Its node died with the task (the claim lapses later): this one
		// runs here, at-least-once as after any crash.
		s.log.Warn().Str("task", t.ID).Str("first", held.ID).Str("node", held.Node).
			Msg("the first task of this Idempotency-Key was on a node that left the cluster; running the repeat here")
		return nil, false, nil
	}
	if async {
		s.remote.Inc()
		return &messages.TaskAccepted{ID: held.ID}, true, nil
	}
	return s.await(ctx, t, held, timeout)
}

// await polls for held's result, for at most timeout (and the watchdog's
// grace): the longest the first task itself may run. A Redis that stops
// answering meanwhile hands the task back to the local router.
func (s *sharedTasks) await(ctx context.Context, t *messages.Task, held cluster.Claim, timeout time.Duration) (any, bool, error) {
	deadline := s.clock.Now().Add(timeout + time.Second)
	wait := pollFirst
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	for {
		if !s.usable() {
			return nil, false, nil
		}
		octx, cancel := s.opContext(ctx)
		rec, found, err := cluster.GetTask(octx, s.rc, held.ID)
		cancel()
		if err != nil {
			s.failed(s.readsFailed, "read", err)
			return nil, false, nil
		}
		if found && rec.Finished() {
			s.remote.Inc()
			return rec.Result.Result(held.ID), true, nil
		}
		if s.gone(held.Node) {
			return nil, false, nil // as in repeat: its node died with it
		}
		if !s.clock.Now().Before(deadline) {
			res := worker.Failed(t, messages.CodeTimeout, fmt.Sprintf(
				"the first task with this Idempotency-Key (%s, on node %s) did not finish within %v", held.ID, held.Node, timeout))
			res.ID = held.ID
			return res, true, nil
		}
		tick := make(chan struct{})
		timer := s.clock.AfterFunc(wait, func() { close(tick) })
		select {
		case <-tick:
		case <-ctx.Done():
			timer.Stop()
			return nil, false, ctx.Err()
		}
		wait = min(2*wait, pollMax)
	}
}
