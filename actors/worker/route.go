package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/deer-runtime/deer/messages"
)

// routed is where an attempt may go, and the breaker generation each
// allowed endpoint's result reports against.
type routed struct {
	endpoints []string // allowed endpoints, for the pool's choice
	gens      []uint64 // gens[i] is endpoints[i]'s breaker generation; nil: single
	single    uint64   // the generation when only one endpoint is allowed
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
// comes back: its breaker grants the one probe, and this call is it. Else
// the pool chooses among the closed endpoints (fewest calls in flight).
// All breakers open and none due: circuit_open, without touching the
// upstream.
func (c *call) route(ctx context.Context) (routed, *messages.TaskResult) {
	eps := c.endpoints
	if !c.cfg.EnableAdvancedOptimization || c.board == nil {
		return routed{endpoints: eps}, nil
	}
	now := c.timeNow()
	// One upstream endpoint, breaker closed: the common case allocates nothing.
	if len(eps) == 1 {
		if ch, ok := c.board.Pick(now, c.task.Upstream, eps, 0); ok && !ch.NeedProbe {
			return routed{endpoints: eps, single: ch.Entry.Generation}, nil
		}
	}
	cands, retryAt := c.board.Candidates(now, c.task.Upstream, eps, nil)
	for _, ch := range cands {
		if !ch.NeedProbe {
			continue
		}
		if v, ok := c.probe(ctx, ch.Endpoint); ok && v.Allowed {
			i := ch.Index
			return routed{endpoints: eps[i : i+1 : i+1], single: v.Generation}, nil
		}
	}
	var r routed
	for _, ch := range cands {
		if !ch.NeedProbe {
			r.endpoints, r.gens = append(r.endpoints, ch.Endpoint), append(r.gens, ch.Entry.Generation)
		}
	}
	if len(r.endpoints) > 0 {
		return r, nil
	}
	msg := fmt.Sprintf("every endpoint of upstream %s has an open circuit breaker", c.task.Upstream)
	if !retryAt.IsZero() {
		msg += fmt.Sprintf("; the next probe is in %v", retryAt.Sub(now).Round(time.Millisecond))
	}
	return r, Failed(c.task, messages.CodeCircuitOpen, msg)
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
