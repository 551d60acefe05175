package messages

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// AcquireToken asks limiter/UPSTREAM for Count tokens (0 means 1). The limiter
// answers *TokenGranted when its bucket allows; until then the request waits
// in the limiter's queue, ordered by Priority (0 most urgent) then arrival.
// The answer goes to ReplyTo when set, else to the sender.
type AcquireToken struct {
	ID       uint64 // caller's correlation id
	Priority int
	Count    int
	ReplyTo  *actor.PID
}

// TokenGranted answers AcquireToken.
type TokenGranted struct {
	ID    uint64
	Count int
}

// CancelToken withdraws a waiting AcquireToken (the caller gave up). Tokens
// already granted are not returned.
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
