package messages

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// CheckBreaker asks breaker/UPSTREAM/ENDPOINT whether a call may go out.
// Reply: *BreakerVerdict, to ReplyTo when set, else to the sender.
//
// Workers do not ask it for every call: they read the breaker's state from
// its breaker.Board, and ask only when the board shows the breaker open or
// half_open with its probe time come, to be granted the single probe.
type CheckBreaker struct {
	ID      uint64     // caller's correlation id, echoed in the verdict
	ReplyTo *actor.PID // optional; defaults to the sender
}

// BreakerVerdict answers CheckBreaker. When Allowed, report the call's result
// with this Generation: results of calls started before the breaker changed
// state are ignored.
type BreakerVerdict struct {
	ID         uint64 // the CheckBreaker's
	Allowed    bool
	Generation uint64
	State      string        // closed, open, half_open
	RetryIn    time.Duration // when not allowed: time until a probe may be let through
}

// ReportResult tells the breaker how an allowed call went. Fire-and-forget.
// A success the board shows would change nothing (breaker.Board.Quiet) is
// not sent.
// A 429 is a rate signal, not a failure: report it with Neutral. Generation
// is the one the call went out under: the CheckBreaker verdict's for a
// probe, the board entry's for a call let through by a closed breaker.
type ReportResult struct {
	Generation uint64
	Success    bool
	Neutral    bool          // neither success nor failure; frees a half-open probe slot
	RetryAfter time.Duration // the upstream's Retry-After: keeps an opening breaker open at least this long
	// Counted: the sender counted this report with breaker.Board.Reporting,
	// and the breaker calls Board.Reported once it has processed it.
	Counted bool
}

// BreakerStateChanged is published on the actor system's EventStream on
// every transition (closed, open, half_open), for logs and observers.
// Workers read breaker.Board instead.
type BreakerStateChanged struct {
	Upstream   string
	Endpoint   string
	State      string // closed, open, half_open
	Generation uint64
}
