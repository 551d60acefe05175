package messages

import "time"

// CheckBreaker asks breaker/UPSTREAM/ENDPOINT whether a call may go out.
// Reply: *BreakerVerdict.
type CheckBreaker struct{}

// BreakerVerdict answers CheckBreaker. When Allowed, report the call's result
// with this Generation: results of calls started before the breaker changed
// state are ignored.
type BreakerVerdict struct {
	Allowed    bool
	Generation uint64
	State      string        // closed, open, half_open
	RetryIn    time.Duration // when not allowed: time until a probe may be let through
}

// ReportResult tells the breaker how an allowed call went. Fire-and-forget.
// A 429 is a rate signal, not a failure: report it with Neutral.
type ReportResult struct {
	Generation uint64
	Success    bool
	Neutral    bool          // neither success nor failure; frees a half-open probe slot
	RetryAfter time.Duration // the upstream's Retry-After: keeps an opening breaker open at least this long
}

// BreakerStateChanged is published on the actor system's EventStream on
// every transition, so that workers can keep a local view without asking.
type BreakerStateChanged struct {
	Upstream   string
	Endpoint   string
	State      string // closed, open, half_open
	Generation uint64
}
