package worker

import (
	"context"

	"github.com/deer-runtime/deer/messages"
)

// token waits for the limiter's grant; isRetry marks a retry, which spends
// the upstream's retry budget and may be refused. A first attempt takes a
// token from the reservoir when there is one, without a message. granted
// is false when the attempt's deadline or the task ended first.
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
