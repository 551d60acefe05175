package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/actors/limiter"
	"github.com/deer-runtime/deer/actors/pool"
	"github.com/deer-runtime/deer/actors/retry"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/reply"
	"github.com/deer-runtime/deer/messages"
)

// call is everything one execution needs, copied out of the worker so the
// goroutine touches no actor state.
type call struct {
	stopped *atomic.Bool // its worker is stopping: report nothing (see Worker.Receive)
	// box is the executor's mailbox for pool, limiter and breaker answers,
	// shared by all its calls: every request carries a process-wide unique
	// id (tokenIDs), so a late answer to an abandoned request never matches
	// a later one.
	box       *reply.Box
	urls      map[urlKey]string // the executor's joined URLs (see url); only it touches them
	system    *actor.ActorSystem
	router    *actor.PID
	worker    *actor.PID
	pool      *actor.PID
	limiter   *actor.PID
	tokens    *limiter.Reservoir    // tokens taken without a message, when there are some
	lane      *pool.Lane            // connection leases taken without a message, when there are some
	breakers  map[string]*actor.PID // endpoint URL → its breaker
	board     *breaker.Board
	up        conf.Upstream
	endpoints []string // up.EndpointURLs(), computed once per worker and upstream
	cfg       *conf.Config
	schedule  retry.Schedule
	task      *messages.Task
	deadline  time.Time        // the task's end (wall clock, as contexts use)
	now       func() time.Time // tests' fixed time; nil: clock.Now
	clock     clock.Clock

	// The task has no context of its own: each attempt (and a retry's wait)
	// has one, which stop cancels. One context per attempt instead of a
	// task context with an attempt context under it saves five allocations
	// per task (the parent's children map, its Done channel, the cancelCtx).
	mu        sync.Mutex
	cancelled bool               // stop was called: the task is cancelled
	cancelCur context.CancelFunc // the current attempt's or wait's context
	held      held               // the current attempt's connection lease
	leaseID   uint64             // the ledger lease's id, when held is heldLedger
}

// held is the connection lease an attempt holds until release.
type held uint8

const (
	heldNone   held = iota
	heldLane        // from the pool's lane: Lane.Return
	heldLedger      // from the pool's ledger: ReleaseConnection{leaseID}
)

// cancelledCtx is an ended context: failure's verdict on a call the
// worker cancelled (stop).
var cancelledCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// stop cancels the task: its current attempt or retry wait, and any that
// would start later. Called by the worker (Cancel, Stopping, Restarting),
// on its own goroutine.
func (c *call) stop() {
	c.mu.Lock()
	c.cancelled = true
	cancel := c.cancelCur
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// isStopped reports whether stop was called.
func (c *call) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancelled
}

// begin makes cancel the one stop cancels; if the task is already
// cancelled, it is cancelled at once.
func (c *call) begin(cancel context.CancelFunc) {
	c.mu.Lock()
	c.cancelCur = cancel
	stopped := c.cancelled
	c.mu.Unlock()
	if stopped {
		cancel()
	}
}

// hold records the attempt's connection lease, for release.
func (c *call) hold(h held, leaseID uint64) {
	c.mu.Lock()
	c.held, c.leaseID = h, leaseID
	c.mu.Unlock()
}

// release gives the current attempt's lease back and ends its deadline;
// calling it again does nothing until the next attempt. A streamed answer's
// lease stays out until its receiver closes the stream (which releases).
func (c *call) release() {
	c.mu.Lock()
	h, id, cancel := c.held, c.leaseID, c.cancelCur
	c.held, c.cancelCur = heldNone, nil
	c.mu.Unlock()
	switch h {
	case heldLane:
		c.lane.Return()
	case heldLedger:
		c.system.Root.Send(c.pool, &messages.ReleaseConnection{LeaseID: id})
	}
	if cancel != nil {
		cancel()
	}
}

// timeNow is the clock's time (a test's fixed one when now is set).
func (c *call) timeNow() time.Time {
	if c.now != nil {
		return c.now()
	}
	return c.clock.Now()
}

// tokenIDs numbers every request a call makes (token, lease, probe, retry
// timer): unique across workers, because the limiter keys its queue by id,
// and across calls, because an executor's box outlives each call.
var tokenIDs atomic.Uint64

// execute runs one upstream call and reports it to the router: the result
// (Finished) and, once the worker may take the next task, Idle (for a
// stream, when the receiver closes it). It runs on the executor goroutine
// so the worker keeps answering health checks and cancellations meanwhile.
func (c *call) execute() {
	res, upstreamTime := c.do()
	res.Upstream = upstreamTime
	if c.stopped.Load() && res.Stream == nil {
		c.release()
		return // the worker was stopped: the router handles the task
	}
	if res.Stream == nil {
		c.release()
		c.system.Root.Send(c.router, &Finished{ID: c.task.ID, Worker: c.worker, Result: res, Idle: true})
		return
	}
	// The receiver reads the stream; closing it frees the connection and
	// the worker.
	body := res.Stream
	res.Stream = &streamBody{ReadCloser: body, onClose: func() {
		c.release()
		c.system.Root.Send(c.router, &Idle{ID: c.task.ID, Worker: c.worker})
	}}
	c.system.Root.Send(c.router, &Finished{ID: c.task.ID, Worker: c.worker, Result: res})
}

// do performs the call, with retries. The last attempt's connection lease
// and deadline stay until release (a streamed answer's until the stream is
// closed).
func (c *call) do() (res *messages.TaskResult, upstreamTime time.Duration) {
	defer func() {
		if p := recover(); p != nil {
			res = Failed(c.task, messages.CodeInternal, fmt.Sprintf("task execution panicked: %v", p))
		}
	}()
	var last *messages.TaskResult
	calls := 0 // attempts that reached the upstream: what "attempts" reports
	for attempt := 1; ; attempt++ {
		a := c.attempt(attempt)
		if a.budgetRefused {
			// The retry budget is spent: the last answer stands.
			c.release()
			last.Err.Message += " (retry budget exhausted)"
			return last, upstreamTime
		}
		upstreamTime += a.upstreamTime
		if a.called {
			calls++
		}
		a.res.Attempts = calls
		if !a.retry || attempt > c.cfg.ErrorRecovery.MaxRetries || !c.cfg.EnableAdvancedOptimization {
			return a.res, upstreamTime
		}
		// The attempt's connection goes back before we wait.
		c.release()
		delay := c.schedule.Delay(attempt, rand.Float64(), a.retryAfter)
		if time.Now().Add(delay).After(c.deadline) {
			// The wait would outlive the task: answer with what we have.
			return a.res, upstreamTime
		}
		if !c.wait(delay) {
			// Cancelled while waiting to retry: the answer still tells what
			// the call got to do, and the last status the upstream gave.
			res := failure(c.task, cancelledCtx, context.Canceled)
			res.Attempts, res.UpstreamStatus = calls, a.res.UpstreamStatus
			return res, upstreamTime
		}
		last = a.res
	}
}

// attemptResult is one attempt's outcome.
type attemptResult struct {
	res           *messages.TaskResult
	upstreamTime  time.Duration
	retry         bool          // retryable outcome
	retryAfter    time.Duration // the upstream's Retry-After, when it sent one
	budgetRefused bool          // a retry the limiter refused: no call was made
	called        bool          // the request went to the upstream
}

// attempt makes one upstream call: a token from the limiter (a retry's
// spends the retry budget), an endpoint whose breaker lets it through, a
// connection lease, the call, and the outcome reported to the limiter and
// the breaker. One deadline covers all of it: the upstream's timeout, or
// the task's when that comes first (a stream's attempt may last as long as
// the task). It is the task's only timer; release ends it and gives the
// lease back.
func (c *call) attempt(n int) (a attemptResult) {
	dl := c.deadline
	if !c.task.Stream && c.up.Timeout > 0 {
		if d := time.Now().Add(conf.Seconds(c.up.Timeout)); d.Before(dl) {
			dl = d
		}
	}
	actx, cancel := context.WithDeadline(context.Background(), dl)
	c.begin(cancel)
	if c.cfg.EnableAdvancedOptimization {
		granted, refused := c.token(actx, n > 1)
		if refused {
			a.budgetRefused = true
			return a
		}
		if !granted {
			return attemptResult{res: failure(c.task, actx, actx.Err())}
		}
	}
	route, refusedRes := c.route(actx)
	if refusedRes != nil {
		return attemptResult{res: refusedRes}
	}
	client, endpoint, err := c.lease(actx, route.endpoints)
	if err != nil {
		return attemptResult{res: failure(c.task, actx, err)}
	}
	req, err := c.request(actx, endpoint)
	if err != nil {
		return attemptResult{res: Failed(c.task, messages.CodeBadRequest, err.Error())}
	}

	a.called = true
	ans, err := c.send(client, req)
	a.upstreamTime, a.retryAfter = ans.took, ans.retryAfter
	if err != nil && c.isStopped() {
		// Cancelled by the caller (not by the attempt's deadline): nothing
		// to report about the upstream.
		a.res = failure(c.task, cancelledCtx, err)
		return a
	}
	c.report(route, endpoint, ans.status, err, ans.retryAfter)
	a.retry = retry.Retryable(ans.status, err)
	if err != nil {
		a.res = failure(c.task, actx, err)
		if ans.status != 0 {
			a.res.UpstreamStatus = ans.status
		}
		return a
	}
	a.res = c.result(ans)
	return a
}

// wait lets delay pass on the clock (a timer delivering to the executor's
// box, so a test clock drives it), or reports false when the task is
// cancelled first.
func (c *call) wait(delay time.Duration) bool {
	if delay <= 0 {
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.begin(cancel)
	ref, box := tokenIDs.Add(1), c.box
	t := c.clock.AfterFunc(delay, func() { box.SendUserMessage(nil, &retryDue{ref: ref}) })
	defer t.Stop()
	for {
		select {
		case m := <-c.box.C():
			if d, ok := m.(*retryDue); ok && d.ref == ref {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// retryDue is the timer message that ends a retry's wait.
type retryDue struct{ ref uint64 }

// failure classifies an error of the call: cancelled, timed out, or the
// upstream's failure.
func failure(t *messages.Task, ctx context.Context, err error) *messages.TaskResult {
	if err == nil {
		err = errors.New("the call ended without an answer")
	}
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return Failed(t, messages.CodeCancelled, "the task was cancelled")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return Failed(t, messages.CodeTimeout, "the upstream did not answer in time: "+err.Error())
	}
	if host, ok := retry.NotFoundHost(err); ok {
		// Not retried (retry.Retryable): say what to fix.
		return Failed(t, messages.CodeUpstream, fmt.Sprintf("upstream %s is unreachable: no such host %s (DNS); check upstreams.%s.base_url and endpoints",
			t.Upstream, host, t.Upstream))
	}
	return Failed(t, messages.CodeUpstream, "calling upstream "+t.Upstream+": "+err.Error())
}

// Failed is t's failed result with error code and msg. Attempts is left at
// zero, for the caller to set when calls were made.
func Failed(t *messages.Task, code, msg string) *messages.TaskResult {
	return &messages.TaskResult{
		ID: t.ID, Status: messages.TaskFailed, Cache: cacheLabel(t),
		Err: &messages.TaskError{Code: code, Message: msg},
	}
}

// cacheLabel is what a result the upstream gave says about the cache:
// CacheBypass when asked for, else CacheMiss (the router marks hits,
// refreshes and coalesced answers).
func cacheLabel(t *messages.Task) string {
	if t.Cache == messages.CacheBypass {
		return messages.CacheBypass
	}
	return messages.CacheMiss
}
