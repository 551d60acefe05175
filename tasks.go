package deer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deer-runtime/deer/actors/router"
	"github.com/deer-runtime/deer/internal/reply"
	"github.com/deer-runtime/deer/internal/taskid"
	"github.com/deer-runtime/deer/messages"
)

// ErrRouterDown is returned when the router is not running (deer is
// stopping, or the router is between restarts and the caller gave up).
var ErrRouterDown = errors.New("deer: router is not running")

// Submit runs task and blocks until its terminal result or until ctx ends;
// when ctx ends first the task is cancelled. A refused or failed task is a
// result with Status "failed" and Err set, not an error: err is reserved
// for the runtime itself not answering.
func (rt *Runtime) Submit(ctx context.Context, task *messages.Task) (*messages.TaskResult, error) {
	res, err := rt.submit(ctx, task, false)
	if err != nil {
		return nil, err
	}
	r, ok := res.(*messages.TaskResult)
	if !ok {
		return nil, fmt.Errorf("deer: router answered %T", res)
	}
	return r, nil
}

// SubmitAsync queues task and returns its id at once; TaskStatus tells how
// it went. A refused task returns its failed result instead.
func (rt *Runtime) SubmitAsync(ctx context.Context, task *messages.Task) (string, *messages.TaskResult, error) {
	res, err := rt.submit(ctx, task, true)
	if err != nil {
		return "", nil, err
	}
	switch r := res.(type) {
	case *messages.TaskAccepted:
		return r.ID, nil, nil
	case *messages.TaskResult:
		return r.ID, r, nil
	}
	return "", nil, fmt.Errorf("deer: router answered %T", res)
}

func (rt *Runtime) submit(ctx context.Context, task *messages.Task, async bool) (any, error) {
	routerPID := rt.Router()
	if routerPID == nil {
		return nil, ErrRouterDown
	}
	if task.ID == "" {
		task.ID = taskid.New() // known here, so a caller that gives up can cancel it
	}
	if res := rt.refuseKeyless(task); res != nil {
		return res, nil
	}
	if rt.shared != nil {
		// An Idempotency-Key another node holds is answered from there.
		res, answered, err := rt.shared.repeat(ctx, task, async, router.TaskTimeout(task, rt.live.Load()))
		if err != nil || answered {
			return res, err
		}
	}
	box := rt.boxes.Get()
	rt.system.Root.Send(routerPID, &messages.SubmitTask{Task: task, ReplyTo: box.PID(), Async: async})
	select {
	case res := <-box.C():
		rt.boxes.Put(box) // the router answers a submission once
		if acc, ok := res.(*messages.TaskAccepted); ok && rt.shared != nil && acc.ID == task.ID {
			rt.shared.accepted(ctx, task) // not a local repeat's: that task has its record
		}
		return res, nil
	case <-ctx.Done():
		box.Close() // its answer may still come: never reuse it
		if !async {
			rt.system.Root.Send(routerPID, &messages.CancelTask{ID: task.ID, Tenant: task.Tenant, ClientGone: true})
		}
		return nil, ctx.Err()
	}
}

// TaskStatus asks the router where task id is. tenant is the Task.Tenant
// the task was submitted with ("" for none): a task is found only by its
// owner, so that knowing an id is not enough to read another's result. On
// a cluster node, a task the router does not know is looked up in Redis,
// with the same owner check.
func (rt *Runtime) TaskStatus(ctx context.Context, id, tenant string) (*messages.TaskStatusReport, error) {
	res, err := rt.askRouter(ctx, &messages.TaskStatusQuery{ID: id, Tenant: tenant})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*messages.TaskStatusReport)
	if !ok {
		return nil, fmt.Errorf("deer: router answered %T", res)
	}
	if !r.Found && rt.shared != nil {
		return rt.shared.status(ctx, id, tenant), nil
	}
	return r, nil
}

// CancelTask cancels a queued or running task; tenant is its owner, as for
// TaskStatus (another tenant's task is not found). On a cluster node, a
// task running on another node is cancelled there (see TaskCancelled.Node).
func (rt *Runtime) CancelTask(ctx context.Context, id, tenant string) (*messages.TaskCancelled, error) {
	res, err := rt.askRouter(ctx, &messages.CancelTask{ID: id, Tenant: tenant})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*messages.TaskCancelled)
	if !ok {
		return nil, fmt.Errorf("deer: router answered %T", res)
	}
	if !r.Found && r.State == "" && rt.shared != nil {
		return rt.shared.cancelTask(ctx, id, tenant), nil
	}
	return r, nil
}

func (rt *Runtime) askRouter(ctx context.Context, msg any) (any, error) {
	router := rt.Router()
	if router == nil {
		return nil, ErrRouterDown
	}
	box := reply.New(rt.system)
	defer box.Close()
	rt.system.Root.RequestWithCustomSender(router, msg, box.PID())
	select {
	case res := <-box.C():
		return res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drainGrace bounds a drain whose context has no deadline.
const drainGrace = 30 * time.Second

// Drain stops accepting tasks and waits until the queued and running ones
// have finished, or until ctx ends; at ctx's deadline (30 s without one) the
// router answers what is left with shutting_down.
func (rt *Runtime) Drain(ctx context.Context) (*messages.TasksDrained, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, drainGrace)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	// The router's clock may be a test's fake one: convert to its time.
	res, err := rt.askRouter(ctx, &messages.DrainTasks{Deadline: rt.clock.Now().Add(time.Until(deadline))})
	if err != nil {
		return nil, err
	}
	d, ok := res.(*messages.TasksDrained)
	if !ok {
		return nil, fmt.Errorf("deer: router answered %T", res)
	}
	return d, nil
}
