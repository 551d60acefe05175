package messages

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// AcquireToken asks limiter/UPSTREAM for Count tokens (0 means 1). The limiter
// answers *TokenGranted when its bucket allows; until then the request waits
// in the limiter's queue, ordered by Priority (0 most urgent) then arrival.
// The answer goes to ReplyTo when set, else to the sender.
//
// Retry marks a retry of a failed attempt (SPEC §5). A first attempt
// (Retry false) counts Count requests toward the upstream's retry budget; a
// retry is let in only while the budget allows Count more retries (20% of
// the first attempts over rate_limit.window_size, plus a floor) and with
// error recovery on (enable_advanced_optimization); otherwise the limiter
// answers *RetryRefused at once and queues nothing. A retry let in is
// counted against the budget, then waits for tokens like any request.
type AcquireToken struct {
	ID       uint64 // caller's correlation id
	Priority int
	Count    int
	ReplyTo  *actor.PID
	Retry    bool
}

// TokenGranted answers AcquireToken.
type TokenGranted struct {
	ID    uint64
	Count int
}

// RetryRefused answers an AcquireToken with Retry set that may not go. The
// caller gives up retrying and reports its last failure.
type RetryRefused struct {
	ID     uint64
	Reason string // RetryBudgetExhausted or RetryRecoveryDisabled
}

// RetryRefused reasons.
const (
	RetryBudgetExhausted  = "retry budget exhausted"
	RetryRecoveryDisabled = "error recovery disabled"
)

// CancelToken withdraws a waiting AcquireToken (the caller gave up). Tokens
// already granted are not returned, nor is a retry's share of the budget.
type CancelToken struct {
	ID uint64
}

// ReportOutcome tells limiter/UPSTREAM how an upstream call went, so that its
// rate adapts (SPEC §5). Fire-and-forget: no reply.
type ReportOutcome struct {
	Status     int           // upstream HTTP status; 0 when there was no response
	Overload   bool          // an overload signal other than 429/503 (e.g. a provider error code)
	RetryAfter time.Duration // the upstream's Retry-After; grants pause until it has passed
}

// RetryBudgetQuery asks limiter/UPSTREAM for its retry budget; it answers
// *RetryBudgetReport.
type RetryBudgetQuery struct{}

// RetryBudgetReport is an upstream's retry budget.
type RetryBudgetReport struct {
	Upstream       string  `json:"upstream"`
	Window         float64 `json:"window"`          // seconds counted over (rate_limit.window_size)
	Requests       uint64  `json:"requests"`        // first attempts in the window
	Retries        uint64  `json:"retries"`         // retries let in within the window
	Available      int     `json:"available"`       // retries that would be let in now (0 with recovery off)
	RetriesTotal   uint64  `json:"retries_total"`   // retries let in since start
	RetriesRefused uint64  `json:"retries_refused"` // retries refused by the budget since start
}
