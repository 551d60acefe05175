package breaker

import "time"

// State is a breaker state. Its value is what deer_breaker_state exports.
type State int

const (
	Closed   State = iota // calls go through; failures are counted
	HalfOpen              // one probe goes through; the rest fail fast
	Open                  // every call fails fast until the timeout
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return "unknown"
}

// Verdict answers Allow.
type Verdict struct {
	Allowed bool
	Gen     uint64        // report the call's result with it
	State   State         // state after the check
	RetryIn time.Duration // when refused: until a probe may go through
}

// Breaker is the state machine core. Every state change starts a new
// generation; a result carrying an older generation belongs to a call that
// started before the change and is ignored, so a slow call from before an
// opening cannot close the breaker, and a late failure cannot reopen it.
// Time is passed in; it starts no goroutines and is not safe for concurrent
// use.
type Breaker struct {
	threshold int
	timeout   time.Duration

	state      State
	gen        uint64
	failures   int           // consecutive, in closed
	openedAt   time.Time     // last opening
	retryAfter time.Duration // Retry-After given with the failure that opened it
	probing    bool          // half_open: the probe is out
	probeAt    time.Time
	reprobe    bool // the last opening came from a failed probe

	opens uint64
}

// New returns a closed breaker.
func New(threshold int, timeout time.Duration) *Breaker {
	return &Breaker{threshold: max(1, threshold), timeout: timeout}
}

// State returns the state as of the last call (Advance moves it on in time).
func (b *Breaker) State() State { return b.state }

// Gen returns the current generation.
func (b *Breaker) Gen() uint64 { return b.gen }

// Failures returns the consecutive failures counted in closed.
func (b *Breaker) Failures() int { return b.failures }

// Opens returns how often the breaker opened.
func (b *Breaker) Opens() uint64 { return b.opens }

// Threshold and Timeout return the settings in force.
func (b *Breaker) Threshold() int         { return b.threshold }
func (b *Breaker) Timeout() time.Duration { return b.timeout }

// reopenAt is when an open breaker lets a probe through: the timeout, or
// the Retry-After that came with the opening failure when that is longer.
// Computed on demand so that a new timeout applies to an open breaker.
func (b *Breaker) reopenAt() time.Time {
	return b.openedAt.Add(max(b.timeout, b.retryAfter))
}

// Deadline returns the next instant at which time alone changes the breaker:
// an open breaker turning half_open, or a half_open probe presumed lost
// after the timeout (its worker died), which lets another probe go.
func (b *Breaker) Deadline() (time.Time, bool) {
	switch {
	case b.state == Open:
		return b.reopenAt(), true
	case b.state == HalfOpen && b.probing:
		return b.probeAt.Add(b.timeout), true
	}
	return time.Time{}, false
}

// OpenUntil is when a probe may go out next, as a Board publishes it: the
// Deadline, or the zero time when there is none (closed: calls go; half_open
// with no probe out: a probe may go now).
func (b *Breaker) OpenUntil() time.Time {
	t, _ := b.Deadline()
	return t
}

// ReopenedByProbe reports whether the last opening came from a failed
// half_open probe rather than from consecutive failures in closed.
func (b *Breaker) ReopenedByProbe() bool { return b.reprobe }

// Advance applies what time alone does (see Deadline).
func (b *Breaker) Advance(now time.Time) {
	switch {
	case b.state == Open && !now.Before(b.reopenAt()):
		b.enter(HalfOpen)
	case b.state == HalfOpen && b.probing && !now.Before(b.probeAt.Add(b.timeout)):
		b.probing = false
		b.gen++ // the lost probe's late answer no longer counts
	}
}

func (b *Breaker) enter(s State) {
	b.state = s
	b.gen++
	b.failures = 0
	b.probing = false
}

// Allow says whether a call may go out now. In half_open exactly one call —
// the probe — is allowed until its result is recorded. A probe whose caller
// never reports (it crashed) does not wedge the breaker: once
// circuit_breaker_timeout has passed since it went out, the next call is
// the new probe, and the lost one's late result is ignored (its generation
// is over). A neutral result (429) frees the slot at once.
func (b *Breaker) Allow(now time.Time) Verdict {
	b.Advance(now)
	v := Verdict{Gen: b.gen, State: b.state}
	switch b.state {
	case Closed:
		v.Allowed = true
	case HalfOpen:
		if !b.probing {
			b.probing, b.probeAt = true, now
			v.Allowed = true
		} else {
			v.RetryIn = b.probeAt.Add(b.timeout).Sub(now)
		}
	case Open:
		v.RetryIn = b.reopenAt().Sub(now)
	}
	return v
}

// RecordSuccess records a call allowed in generation gen that succeeded. It
// reports whether the result counted.
func (b *Breaker) RecordSuccess(now time.Time, gen uint64) bool {
	b.Advance(now)
	if gen != b.gen {
		return false
	}
	switch b.state {
	case Closed:
		b.failures = 0
	case HalfOpen:
		if !b.probing {
			return false
		}
		b.enter(Closed)
	default:
		return false
	}
	return true
}

// RecordFailure records a call allowed in generation gen that failed.
// retryAfter, the upstream's Retry-After if any, keeps the breaker open at
// least that long when this failure opens it. It reports whether the
// result counted.
func (b *Breaker) RecordFailure(now time.Time, gen uint64, retryAfter time.Duration) bool {
	b.Advance(now)
	if gen != b.gen {
		return false
	}
	switch b.state {
	case Closed:
		b.failures++
		if b.failures >= b.threshold {
			b.open(now, retryAfter, false)
		}
	case HalfOpen:
		if !b.probing {
			return false
		}
		b.open(now, retryAfter, true)
	default:
		return false
	}
	return true
}

// RecordNeutral records a call that was neither success nor failure (a 429):
// a half_open probe slot is freed for the next call; closed counts nothing.
func (b *Breaker) RecordNeutral(now time.Time, gen uint64) bool {
	b.Advance(now)
	if gen != b.gen || b.state != HalfOpen || !b.probing {
		return false
	}
	b.probing = false
	b.gen++
	return true
}

func (b *Breaker) open(now time.Time, retryAfter time.Duration, byProbe bool) {
	failures := b.failures
	b.enter(Open)
	b.failures = failures // kept for status: what opened it
	b.openedAt, b.retryAfter, b.reprobe = now, retryAfter, byProbe
	b.opens++
}

// SetThreshold applies a new threshold at once: a closed breaker that has
// already counted that many consecutive failures opens now.
func (b *Breaker) SetThreshold(now time.Time, n int) {
	b.threshold = max(1, n)
	if b.state == Closed && b.failures >= b.threshold {
		b.open(now, 0, false)
	}
}

// SetTimeout applies a new open timeout at once: an open breaker's reopen
// time is recomputed from when it opened (and it turns half_open now if
// that time has passed).
func (b *Breaker) SetTimeout(now time.Time, d time.Duration) {
	b.timeout = d
	b.Advance(now)
}

// Reset closes the breaker, forgetting failures; results of calls in
// flight are ignored.
func (b *Breaker) Reset() {
	if b.state != Closed || b.failures != 0 {
		b.enter(Closed)
	}
}

// RetryIn returns how long until an open breaker lets a probe through.
func (b *Breaker) RetryIn(now time.Time) time.Duration {
	if b.state != Open {
		return 0
	}
	return max(0, b.reopenAt().Sub(now))
}
