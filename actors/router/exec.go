package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
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
	// box is the executor's mailbox for pool, limiter and breaker answers,
	// shared by all its calls: every request carries a process-wide unique
	// id (tokenIDs), so a late answer to an abandoned request never matches
	// a later one.
	box       *reply.Box
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
	deadline  time.Time // the task's end (wall clock, as contexts use)
	now       func() time.Time
	clock     clock.Clock
}

// execute runs one upstream call and reports it to the router: the result
// (taskFinished) and, once the worker may take the next task, workerIdle
// (for a stream, when the receiver closes it). It runs on its own goroutine
// so the worker keeps answering health checks and cancellations meanwhile.
func (c *call) execute(ctx context.Context, cancel context.CancelFunc) {
	res, upstreamTime, release := c.do(ctx)
	res.Upstream = upstreamTime
	if res.Stream == nil {
		release()
		cancel()
		c.system.Root.Send(c.router, &taskFinished{id: c.task.ID, worker: c.worker, result: res, idle: true})
		return
	}
	// The receiver reads the stream; closing it frees the connection and
	// the worker.
	body := res.Stream
	res.Stream = &streamBody{ReadCloser: body, onClose: func() {
		release()
		cancel()
		c.system.Root.Send(c.router, &workerIdle{id: c.task.ID, worker: c.worker})
	}}
	c.system.Root.Send(c.router, &taskFinished{id: c.task.ID, worker: c.worker, result: res})
}

// do performs the call, with retries; release returns the last attempt's
// connection lease and ends its deadline (idempotent). The lease of a
// streamed answer stays out until the stream is closed.
func (c *call) do(ctx context.Context) (res *messages.TaskResult, upstreamTime time.Duration, release func()) {
	release = func() {}
	defer func() {
		if p := recover(); p != nil {
			res = failed(c.task, messages.CodeInternal, fmt.Sprintf("task execution panicked: %v", p))
		}
	}()
	var last *messages.TaskResult
	calls := 0 // attempts that reached the upstream: what "attempts" reports
	for attempt := 1; ; attempt++ {
		var a attemptResult
		a, release = c.attempt(ctx, attempt)
		if a.budgetRefused {
			// The retry budget is spent: the last answer stands.
			release()
			last.Err.Message += " (retry budget exhausted)"
			return last, upstreamTime, func() {}
		}
		upstreamTime += a.upstreamTime
		if a.called {
			calls++
		}
		a.res.Attempts = calls
		if !a.retry || attempt > c.cfg.ErrorRecovery.MaxRetries || !c.cfg.EnableAdvancedOptimization {
			return a.res, upstreamTime, release
		}
		// The attempt's connection goes back before we wait.
		release()
		release = func() {}
		delay := c.schedule.Delay(attempt, rand.Float64(), a.retryAfter)
		if time.Now().Add(delay).After(c.deadline) {
			// The wait would outlive the task: answer with what we have.
			return a.res, upstreamTime, release
		}
		if !c.wait(ctx, delay) {
			return failure(c.task, ctx, ctx.Err()), upstreamTime, release
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
// the task). It is the task's only timer; release ends it.
func (c *call) attempt(ctx context.Context, n int) (a attemptResult, release func()) {
	dl := c.deadline
	if !c.task.Stream && c.up.Timeout > 0 {
		if d := time.Now().Add(conf.Seconds(c.up.Timeout)); d.Before(dl) {
			dl = d
		}
	}
	actx, cancel := context.WithDeadline(ctx, dl)
	release = cancel
	if c.cfg.EnableAdvancedOptimization {
		granted, refused := c.token(actx, n > 1)
		if refused {
			a.budgetRefused = true
			return a, release
		}
		if !granted {
			return attemptResult{res: failure(c.task, actx, actx.Err())}, release
		}
	}
	route, refusedRes := c.route(actx)
	if refusedRes != nil {
		return attemptResult{res: refusedRes}, release
	}
	client, endpoint, giveBack, err := c.lease(actx, route.endpoints)
	if err != nil {
		return attemptResult{res: failure(c.task, actx, err)}, release
	}
	var once sync.Once
	release = func() {
		once.Do(giveBack)
		cancel()
	}
	res := &messages.TaskResult{ID: c.task.ID, Cache: cacheLabel(c.task)}
	req, err := c.request(actx, endpoint)
	if err != nil {
		return attemptResult{res: failed(c.task, messages.CodeBadRequest, err.Error())}, release
	}

	start := c.now()
	a.called = true
	resp, err := client.Do(req)
	var body []byte
	if err == nil && !(c.task.Stream && resp.StatusCode/100 == 2) {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	a.upstreamTime = c.now().Sub(start)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		if ra, ok := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			a.retryAfter = ra
		}
	}
	if err != nil && ctx.Err() != nil {
		// Cancelled by the caller (the task's own context has no deadline):
		// nothing to report about the upstream.
		a.res = failure(c.task, ctx, err)
		return a, release
	}
	c.report(route, endpoint, status, err, a.retryAfter)
	a.retry = retry.Retryable(status, err)
	if err != nil {
		a.res = failure(c.task, actx, err)
		if status != 0 {
			a.res.UpstreamStatus = status
		}
		return a, release
	}
	res.UpstreamStatus = status
	res.Header = resp.Header
	res.Status = messages.TaskSucceeded
	if c.task.Stream && status/100 == 2 {
		res.Stream = resp.Body
		a.res = res
		return a, release
	}
	res.Body = body
	if status >= 500 || status == http.StatusTooManyRequests {
		// The upstream failed or throttled: the call did not do its job.
		res.Status = messages.TaskFailed
		res.Err = &messages.TaskError{Code: messages.CodeUpstream, Message: fmt.Sprintf("upstream %s answered %d", c.task.Upstream, status)}
	}
	a.res = res
	return a, release
}

// routed is where an attempt may go, and the breaker generation each
// allowed endpoint's result reports against.
type routed struct {
	endpoints []string // allowed endpoints, for the pool's choice
	gens      []uint64 // gens[i] is endpoints[i]'s breaker generation; nil: single
	single    uint64   // the generation when the upstream's only endpoint is allowed
}

// gen is the breaker generation of endpoint ep.
func (r routed) gen(ep string) uint64 {
	if r.gens == nil {
		return r.single
	}
	for i, e := range r.endpoints {
		if e == ep && i < len(r.gens) {
			return r.gens[i]
		}
	}
	return 0
}

// route picks the endpoints whose breakers let the call through, reading
// the breaker board (no message exchange). An endpoint whose open time has
// passed is probed first, even while others work, so a recovered endpoint
// comes back: its breaker grants the one probe, and this call is it. All
// breakers open and none due: circuit_open, without touching the upstream.
func (c *call) route(ctx context.Context) (routed, *messages.TaskResult) {
	eps := c.endpoints
	if !c.cfg.EnableAdvancedOptimization || c.board == nil {
		return routed{endpoints: eps}, nil
	}
	now := c.now()
	// One upstream endpoint, breaker closed: the common case allocates nothing.
	if len(eps) == 1 {
		if e, found := c.board.Get(c.task.Upstream, eps[0]); !found || e.State == breaker.Closed {
			return routed{endpoints: eps, single: e.Generation}, nil
		}
	}
	var r routed
	var due []string
	var retryAt time.Time
	for _, ep := range eps {
		e, found := c.board.Get(c.task.Upstream, ep)
		if !found {
			r.endpoints, r.gens = append(r.endpoints, ep), append(r.gens, 0) // no entry yet: closed, generation 0
			continue
		}
		probe, ok := e.Admits(now)
		switch {
		case ok && !probe:
			r.endpoints, r.gens = append(r.endpoints, ep), append(r.gens, e.Generation)
		case ok:
			due = append(due, ep)
		case retryAt.IsZero() || e.OpenUntil.Before(retryAt):
			retryAt = e.OpenUntil
		}
	}
	for _, ep := range due {
		if v, ok := c.probe(ctx, ep); ok && v.Allowed {
			return routed{endpoints: []string{ep}, gens: []uint64{v.Generation}}, nil
		}
	}
	if len(r.endpoints) > 0 {
		return r, nil
	}
	msg := fmt.Sprintf("every endpoint of upstream %s has an open circuit breaker", c.task.Upstream)
	if !retryAt.IsZero() {
		msg += fmt.Sprintf("; the next probe is in %v", retryAt.Sub(now).Round(time.Millisecond))
	}
	return r, failed(c.task, messages.CodeCircuitOpen, msg)
}

// probe asks the breaker of endpoint ep for its half-open probe slot.
func (c *call) probe(ctx context.Context, ep string) (*messages.BreakerVerdict, bool) {
	pid := c.breakers[ep]
	if pid == nil {
		return nil, false
	}
	id := tokenIDs.Add(1)
	c.system.Root.Send(pid, &messages.CheckBreaker{ID: id, ReplyTo: c.box.PID()})
	for {
		select {
		case m := <-c.box.C():
			if v, ok := m.(*messages.BreakerVerdict); ok && v.ID == id {
				return v, true
			}
		case <-ctx.Done():
			return nil, false
		}
	}
}

// report tells the limiter and the endpoint's breaker how the attempt went
// (fire-and-forget).
func (c *call) report(r routed, ep string, status int, err error, retryAfter time.Duration) {
	if !c.cfg.EnableAdvancedOptimization {
		return
	}
	class := retry.Classify(status, err)
	if c.limiter != nil {
		c.system.Root.Send(c.limiter, &messages.ReportOutcome{Status: status, RetryAfter: retryAfter})
	}
	if pid := c.breakers[ep]; pid != nil {
		gen, success, neutral := r.gen(ep), class == retry.Success || class == retry.ClientError, class == retry.RateSignal
		if success && c.board.Quiet(c.task.Upstream, ep, gen) {
			return // a closed breaker with no failure to reset: nothing to tell it
		}
		counted := !success && !neutral
		if counted {
			c.board.Reporting(c.task.Upstream, ep)
		}
		c.system.Root.Send(pid, &messages.ReportResult{
			Generation: gen, Success: success, Neutral: neutral, RetryAfter: retryAfter, Counted: counted,
		})
	}
}

// token waits for the limiter's grant; isRetry marks a retry, which spends
// the upstream's retry budget and may be refused. granted is false when the
// attempt's deadline or the task ended first.
func (c *call) token(ctx context.Context, isRetry bool) (granted, refused bool) {
	if c.limiter == nil {
		return true, false
	}
	if !isRetry && c.tokens.TryTake() {
		return true, false // a retry always asks: it spends the budget
	}
	id := tokenIDs.Add(1)
	c.system.Root.Send(c.limiter, &messages.AcquireToken{ID: id, Priority: c.task.Priority, ReplyTo: c.box.PID(), Retry: isRetry})
	for {
		select {
		case m := <-c.box.C():
			switch m := m.(type) {
			case *messages.TokenGranted:
				if m.ID == id {
					return true, false
				}
			case *messages.RetryRefused:
				if m.ID == id {
					return false, true
				}
			}
		case <-ctx.Done():
			c.system.Root.Send(c.limiter, &messages.CancelToken{ID: id})
			return false, false
		}
	}
}

// tokenIDs numbers every request a call makes (token, lease, probe, retry
// timer): unique across workers, because the limiter keys its queue by id,
// and across calls, because an executor's box outlives each call.
var tokenIDs atomic.Uint64

// wait lets delay pass on the clock (a timer delivering to the executor's
// box, so a test clock drives it), or reports false when the task ends first.
func (c *call) wait(ctx context.Context, delay time.Duration) bool {
	if delay <= 0 {
		return true
	}
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

// lease takes a connection lease for one of endpoints: from the pool's lane
// when it has one for the only endpoint (no message), else from the pool.
// giveBack returns it; call it once.
func (c *call) lease(ctx context.Context, endpoints []string) (client *http.Client, endpoint string, giveBack func(), err error) {
	if len(endpoints) == 1 {
		if l, ok := c.lane.Take(endpoints[0]); ok {
			return l.Client, l.Endpoint, c.lane.Return, nil
		}
	}
	lease, err := c.acquire(ctx, endpoints)
	if err != nil {
		return nil, "", nil, err
	}
	id := lease.LeaseID
	return lease.Client, lease.Endpoint, func() { c.system.Root.Send(c.pool, &messages.ReleaseConnection{LeaseID: id}) }, nil
}

// acquire leases a connection from the upstream's pool for one of
// endpoints, giving the request back if the task ends while it waits.
func (c *call) acquire(ctx context.Context, endpoints []string) (*messages.ConnectionLeased, error) {
	if c.pool == nil {
		return nil, fmt.Errorf("no connection pool for upstream %q", c.task.Upstream)
	}
	ref := tokenIDs.Add(1)
	c.system.Root.Send(c.pool, &messages.AcquireConnection{Ref: ref, ReplyTo: c.box.PID(), Endpoints: endpoints})
	for {
		select {
		case m := <-c.box.C():
			lease, ok := m.(*messages.ConnectionLeased)
			if !ok || lease.Ref != ref {
				// A stale answer for an earlier request that gave up: the
				// pool released its lease when that request was cancelled.
				continue
			}
			return lease, nil
		case <-ctx.Done():
			c.system.Root.Send(c.pool, &messages.CancelAcquire{Owner: c.box.PID(), Ref: ref})
			return nil, ctx.Err()
		}
	}
}

func (c *call) request(ctx context.Context, endpoint string) (*http.Request, error) {
	method := c.task.Method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if len(c.task.Body) > 0 {
		body = bytes.NewReader(c.task.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(endpoint, "/")+c.task.Path, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.task.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Del("Authorization") // the credential is the upstream's, never the caller's
	if c.up.APIKeyEnv != "" {
		if key := os.Getenv(c.up.APIKeyEnv); key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// failure classifies an error of the call.
func failure(t *messages.Task, ctx context.Context, err error) *messages.TaskResult {
	if err == nil {
		err = errors.New("the call ended without an answer")
	}
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return failed(t, messages.CodeCancelled, "the task was cancelled")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return failed(t, messages.CodeTimeout, "the upstream did not answer in time: "+err.Error())
	}
	return failed(t, messages.CodeUpstream, "calling upstream "+t.Upstream+": "+err.Error())
}

func failed(t *messages.Task, code, msg string) *messages.TaskResult {
	return &messages.TaskResult{
		ID: t.ID, Status: messages.TaskFailed, Cache: cacheLabel(t), // Attempts: none, unless set by the caller
		Err: &messages.TaskError{Code: code, Message: msg},
	}
}

// cacheLabel is what a result says about the cache until the cache is on
// the task path: "bypass" when asked for, else "miss".
func cacheLabel(t *messages.Task) string {
	if t.Cache == "bypass" {
		return "bypass"
	}
	return "miss"
}

// streamBody runs onClose once when the receiver closes the stream.
type streamBody struct {
	io.ReadCloser
	once    sync.Once
	onClose func()
}

func (s *streamBody) Close() error {
	err := s.ReadCloser.Close()
	s.once.Do(s.onClose)
	return err
}
