package worker

import (
	"context"
	"fmt"
	"net/http"

	"github.com/deer-runtime/deer/messages"
)

// lease takes a connection lease for one of endpoints: from the pool's lane
// when it has one for the only endpoint (no message), else from the pool.
// release gives it back.
func (c *call) lease(ctx context.Context, endpoints []string) (client *http.Client, endpoint string, err error) {
	if len(endpoints) == 1 {
		if l, ok := c.lane.Take(endpoints[0]); ok {
			c.hold(heldLane, 0)
			return l.Client, l.Endpoint, nil
		}
	}
	lease, err := c.acquire(ctx, endpoints)
	if err != nil {
		return nil, "", err
	}
	c.hold(heldLedger, lease.LeaseID)
	return lease.Client, lease.Endpoint, nil
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
