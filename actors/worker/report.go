package worker

import (
	"time"

	"github.com/deer-runtime/deer/actors/retry"
	"github.com/deer-runtime/deer/messages"
)

// report tells the limiter and the endpoint's breaker how the attempt went
// (fire-and-forget). A success the breaker would ignore (Board.Quiet) is
// not sent.
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
