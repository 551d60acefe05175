package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/reply"
	"github.com/deer-runtime/deer/messages"
)

// call is everything one execution needs, copied out of the worker so the
// goroutine touches no actor state.
type call struct {
	box    *reply.Box // the executor's mailbox for pool answers
	ref    uint64     // correlates this call's lease request with its answer
	system *actor.ActorSystem
	router *actor.PID
	worker *actor.PID
	pool   *actor.PID
	up     conf.Upstream
	task   *messages.Task
	now    func() time.Time
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

// do performs the call; release returns the connection lease (idempotent).
func (c *call) do(ctx context.Context) (res *messages.TaskResult, upstreamTime time.Duration, release func()) {
	release = func() {}
	res = &messages.TaskResult{ID: c.task.ID, Attempts: 1, Cache: cacheLabel(c.task)}
	defer func() {
		if p := recover(); p != nil {
			res = failed(c.task, messages.CodeInternal, fmt.Sprintf("task execution panicked: %v", p))
		}
	}()

	lease, err := c.acquire(ctx)
	if err != nil {
		return failure(c.task, ctx, err), 0, release
	}
	var once sync.Once
	release = func() {
		once.Do(func() { c.system.Root.Send(c.pool, &messages.ReleaseConnection{LeaseID: lease.LeaseID}) })
	}

	req, err := c.request(ctx, lease.Endpoint)
	if err != nil {
		return failed(c.task, messages.CodeBadRequest, err.Error()), 0, release
	}
	attemptCtx, cancelAttempt := ctx, context.CancelFunc(func() {})
	if !c.task.Stream && c.up.Timeout > 0 {
		attemptCtx, cancelAttempt = context.WithTimeout(ctx, conf.Seconds(c.up.Timeout))
	}
	defer cancelAttempt()
	req = req.WithContext(attemptCtx)

	start := c.now()
	resp, err := lease.Client.Do(req)
	if err != nil {
		return failure(c.task, attemptCtx, err), c.now().Sub(start), release
	}
	res.UpstreamStatus = resp.StatusCode
	res.Header = resp.Header
	if c.task.Stream && resp.StatusCode/100 == 2 {
		res.Status = messages.TaskSucceeded
		res.Stream = resp.Body
		return res, c.now().Sub(start), release
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	upstreamTime = c.now().Sub(start)
	if err != nil {
		return failure(c.task, attemptCtx, err), upstreamTime, release
	}
	res.Body = body
	res.Status = messages.TaskSucceeded
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		// The upstream failed or throttled: the call did not do its job.
		res.Status = messages.TaskFailed
		res.Err = &messages.TaskError{Code: messages.CodeUpstream, Message: fmt.Sprintf("upstream %s answered %d", c.task.Upstream, resp.StatusCode)}
	}
	return res, upstreamTime, release
}

// acquire leases a connection from the upstream's pool, giving the request
// back if the task ends while it waits.
func (c *call) acquire(ctx context.Context) (*messages.ConnectionLeased, error) {
	if c.pool == nil {
		return nil, fmt.Errorf("no connection pool for upstream %q", c.task.Upstream)
	}
	c.system.Root.Send(c.pool, &messages.AcquireConnection{Ref: c.ref, ReplyTo: c.box.PID()})
	for {
		select {
		case m := <-c.box.C():
			lease, ok := m.(*messages.ConnectionLeased)
			if !ok {
				return nil, fmt.Errorf("pool answered %T", m)
			}
			if lease.Ref != c.ref {
				// A grant for an earlier call that gave up waiting: the
				// pool released it when that call cancelled.
				continue
			}
			return lease, nil
		case <-ctx.Done():
			c.system.Root.Send(c.pool, &messages.CancelAcquire{Owner: c.box.PID(), Ref: c.ref})
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
		ID: t.ID, Status: messages.TaskFailed, Attempts: 1, Cache: cacheLabel(t),
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
