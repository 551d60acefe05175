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

// Settings are what a breaker applies, from error_recovery.
type Settings struct {
	// Threshold (circuit_breaker_threshold) is how many failures the window
	// must hold for the breaker to open; at least 1.
	Threshold int
	// Rate (failure_rate_threshold) is the share of the window's calls those
	// failures must make up, in (0, 1].
	Rate float64
	// Window (failure_window) is how far back failures and calls count,
	// rolled forward in Buckets steps.
	Window time.Duration
	// Timeout (circuit_breaker_timeout) is how long the breaker stays open
	// before it lets a probe through.
	Timeout time.Duration
}

// Breaker is the state machine core. Closed, it opens when its rolling
// window (Settings.Window) holds at least Threshold failures and they make
// up at least Rate of the window's calls: an endpoint failing every call
// opens after Threshold calls, scattered failures below Rate never open it,
// and failures further apart than the window do not add up. A call is a
// success or a failure; a neutral result (429) is neither. The window
// starts empty whenever the breaker changes state. Half_open lets one probe
// through; its success closes the breaker, its failure reopens it.
//
// Successes a worker does not report (Board.Quiet counts them instead)
// reach the core through CountQuiet, which spreads them over the time since
// it last counted.
//
// Every state change starts a new generation; a result carrying an older
// generation belongs to a call that started before the change and is
// ignored, so a slow call from before an opening cannot close the breaker,
// and a late failure cannot reopen it. Time is passed in; it starts no
// goroutines and is not safe for concurrent use.
type Breaker struct {
	threshold int
	rate      float64
	window    time.Duration // as configured; win rolls in tenths of it
	timeout   time.Duration

	state      State
	gen        uint64
	win        window        // calls and failures in closed, over failure_window
	failures   int           // consecutive, in closed: what a success resets (Board.Quiet)
	quiet      uint64        // the board's count of unreported successes, as of quietAt
	quietAt    time.Time     // zero: not counted yet
	closedAt   time.Time     // when it last entered closed (zero: never left it)
	tripped    [2]int64      // failures and calls in the window when it last opened from closed
	openedAt   time.Time     // last opening
	retryAfter time.Duration // Retry-After given with the failure that opened it
	probing    bool          // half_open: the probe is out
	probeAt    time.Time
	reprobe    bool // the last opening came from a failed probe
	// remoteUntil, when set, is when an opening adopted from another node
	// (Adopt) lets a probe through: that node's reopen time, not ours.
	remoteUntil time.Time

	opens uint64
}

// New returns a closed breaker applying s.
func New(s Settings) *Breaker {
	b := &Breaker{win: newWindow(s.Window)}
	b.set(s)
	return b
}

func (b *Breaker) set(s Settings) {
	b.threshold = max(1, s.Threshold)
	b.rate = min(max(s.Rate, 0), 1)
	b.window = s.Window
	b.timeout = s.Timeout
}

// State returns the state as of the last call (Advance moves it on in time).
func (b *Breaker) State() State { return b.state }

// Gen returns the current generation.
func (b *Breaker) Gen() uint64 { return b.gen }

// Failures returns the consecutive failures counted in closed; after an
// opening from closed, those it opened with.
func (b *Breaker) Failures() int { return b.failures }

// Window returns the failures and calls in the rolling window at now
// (closed; zero in the other states, whose window is empty).
func (b *Breaker) Window(now time.Time) (failures, calls int64) {
	calls, failures = b.win.sums(now)
	return failures, calls
}

// Tripped returns the failures and calls in the window when the breaker
// last opened from closed.
func (b *Breaker) Tripped() (failures, calls int64) { return b.tripped[0], b.tripped[1] }

// Opens returns how often the breaker opened.
func (b *Breaker) Opens() uint64 { return b.opens }

// Threshold and Timeout return the settings in force.
func (b *Breaker) Threshold() int         { return b.threshold }
func (b *Breaker) Timeout() time.Duration { return b.timeout }

// Settings returns the settings in force.
func (b *Breaker) Settings() Settings {
	return Settings{Threshold: b.threshold, Rate: b.rate, Window: b.window, Timeout: b.timeout}
}

// reopenAt is when an open breaker lets a probe through: the timeout, or
// the Retry-After that came with the opening failure when that is longer.
// Computed on demand so that a new timeout applies to an open breaker.
func (b *Breaker) reopenAt() time.Time {
	if !b.remoteUntil.IsZero() {
		return b.remoteUntil
	}
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
		b.enter(HalfOpen, now)
	case b.state == HalfOpen && b.probing && !now.Before(b.probeAt.Add(b.timeout)):
		b.probing = false
		b.gen++ // the lost probe's late answer no longer counts
	}
}

func (b *Breaker) enter(s State, now time.Time) {
	b.state = s
	b.gen++
	b.failures = 0
	b.probing = false
	b.remoteUntil = time.Time{}
	b.win.clear()
	if s == Closed {
		b.closedAt = now
	}
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

// CountQuiet counts the successes of calls through the closed breaker that
// were not reported to it: total is the running count Board.QuietCalls
// returns for its endpoint. Those counted since the last CountQuiet
// happened at some time in between; they are spread evenly over it (since
// the breaker closed, at the earliest), which is exact for steady traffic.
// The first CountQuiet only takes the count as its starting point. Counts
// arriving while the breaker is not closed are dropped: its window starts
// empty when it closes. Call it before recording each result, so that the
// window holds the calls that came before it.
func (b *Breaker) CountQuiet(now time.Time, total uint64) {
	n, from := total-b.quiet, b.quietAt
	if total < b.quiet || from.IsZero() {
		n = 0 // a fresh start (or another board): nothing to place
	}
	b.quiet, b.quietAt = total, now
	b.Advance(now)
	if n == 0 || b.state != Closed {
		return
	}
	if from.Before(b.closedAt) {
		from = b.closedAt
	}
	b.win.spread(from, now, int64(min(n, 1<<62)))
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
		b.win.add(now, 1, 0)
	case HalfOpen:
		if !b.probing {
			return false
		}
		b.enter(Closed, now)
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
		b.win.add(now, 1, 1)
		b.trip(now, retryAfter)
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

// trip opens a closed breaker whose window holds at least threshold
// failures making up at least rate of its calls. The share is compared as
// failures/calls, which rounds the same way a rate written as a decimal
// does: 5 of 10 calls meets 0.5 exactly.
func (b *Breaker) trip(now time.Time, retryAfter time.Duration) {
	if b.state != Closed {
		return
	}
	calls, failures := b.win.sums(now)
	if failures < int64(b.threshold) || float64(failures)/float64(calls) < b.rate {
		return
	}
	b.tripped = [2]int64{failures, calls}
	b.open(now, retryAfter, false)
}

func (b *Breaker) open(now time.Time, retryAfter time.Duration, byProbe bool) {
	failures := b.failures
	b.enter(Open, now)
	b.failures = failures // kept for status: what opened it
	b.openedAt, b.retryAfter, b.reprobe = now, retryAfter, byProbe
	b.opens++
}

// Adopt applies a change another node of the cluster made to its breaker
// of the same endpoint, so that the endpoint is open or closed on every
// node at once. Open (for openFor, the time that node has left before its
// probe) opens a closed or half_open breaker until then, or moves an open
// one's reopen time later to it (never earlier, so nodes that tripped
// together agree on the later); a probe of ours in flight no longer counts.
// Closed (that node's probe succeeded) closes an open or half_open one. It
// reports whether the breaker changed. A remote opening is not counted in
// Opens: the node that tripped counts it.
func (b *Breaker) Adopt(now time.Time, s State, openFor time.Duration) bool {
	b.Advance(now)
	switch s {
	case Open:
		until := now.Add(max(openFor, 0))
		if b.state == Open && !until.After(b.reopenAt()) {
			return false // ours lasts as long or longer
		}
		failures := b.failures
		b.enter(Open, now)
		b.failures = failures
		b.openedAt, b.retryAfter, b.reprobe = now, 0, false
		b.remoteUntil = until
		b.tripped = [2]int64{}
		return true
	case Closed:
		if b.state == Closed {
			return false
		}
		b.enter(Closed, now)
		return true
	}
	return false
}

// Remote reports whether the breaker is open because another node opened
// it (Adopt), not because of calls of its own.
func (b *Breaker) Remote() bool { return b.state == Open && !b.remoteUntil.IsZero() }

// ProbeElsewhere takes back the probe Allow just granted, because another
// node holds the cluster's one half_open probe: the breaker stays half_open
// with its probe counted as out (that node's result arrives through Adopt),
// and the grant's generation is over. Should that node go silent, the
// lost-probe deadline lets this one probe after circuit_breaker_timeout.
func (b *Breaker) ProbeElsewhere(now time.Time) {
	if b.state != HalfOpen {
		return
	}
	b.probing, b.probeAt = true, now
	b.gen++
}

// Configure applies s at once. A new timeout moves an open breaker's
// reopen time, computed from when it opened (it turns half_open now if
// that time has passed). A new threshold or rate opens a closed breaker
// whose window already meets them. A new window length starts the window
// afresh: its buckets no longer fit.
func (b *Breaker) Configure(now time.Time, s Settings) {
	b.set(s)
	if w := newWindow(s.Window); w.width != b.win.width {
		b.win = w
	}
	b.Advance(now)
	b.trip(now, 0)
}

// Reset closes the breaker, forgetting failures and the window; results of
// calls in flight are ignored.
func (b *Breaker) Reset(now time.Time) {
	if b.state != Closed || b.failures != 0 {
		b.enter(Closed, now)
	}
	b.win.clear()
	b.closedAt = now // quiet successes from before are forgotten too
}

// RetryIn returns how long until an open breaker lets a probe through.
func (b *Breaker) RetryIn(now time.Time) time.Duration {
	if b.state != Open {
		return 0
	}
	return max(0, b.reopenAt().Sub(now))
}
