package supervisor

import "time"

// Action is what a supervisor does about a failure.
type Action int

const (
	Restart  Action = iota // restart the child after Decision.Delay
	Escalate               // restart intensity exceeded: hand the failure to the parent
)

func (a Action) String() string {
	switch a {
	case Restart:
		return "restart"
	case Escalate:
		return "escalate"
	}
	return "unknown"
}

// Decision is the outcome of one failure.
type Decision struct {
	Action  Action
	Delay   time.Duration // wait before restarting (Restart only)
	Attempt int           // consecutive failures since the backoff last reset, this one included
	Recent  int           // failures within the intensity window, this one included
}

// Tracker is the restart bookkeeping of one child. It is a pure state
// machine: time and randomness come in as arguments, so tests drive it over
// fixed instants. It is not safe for concurrent use.
type Tracker struct {
	policy   Policy
	failures []time.Time // failures within the window, oldest first
	attempt  int
	last     time.Time // last failure; zero before the first
}

// NewTracker returns a tracker for a child that has not failed yet.
func NewTracker(p Policy) *Tracker {
	return &Tracker{policy: p}
}

// Fail records a failure at now and decides what to do. u is a uniform draw
// from [0, 1) for the jitter.
func (t *Tracker) Fail(now time.Time, u float64) Decision {
	p := t.policy
	if p.ResetAfter > 0 && !t.last.IsZero() && now.Sub(t.last) >= p.ResetAfter {
		t.attempt = 0
	}
	t.last = now

	// Keep only failures inside (now-Window, now]; the slice never holds
	// more than MaxRestarts+1 entries because exceeding that escalates.
	cut := 0
	for cut < len(t.failures) && now.Sub(t.failures[cut]) >= p.Window {
		cut++
	}
	t.failures = append(t.failures[cut:], now)

	if len(t.failures) > p.MaxRestarts {
		d := Decision{Action: Escalate, Attempt: t.attempt + 1, Recent: len(t.failures)}
		// Whoever handles the escalation restarts this child afresh (or not
		// at all); stale counts would escalate its next failure at once.
		t.Reset()
		return d
	}
	t.attempt++
	return Decision{
		Action:  Restart,
		Delay:   p.Jittered(p.Backoff(t.attempt), u),
		Attempt: t.attempt,
		Recent:  len(t.failures),
	}
}

// Reset forgets every failure.
func (t *Tracker) Reset() {
	t.failures, t.attempt, t.last = nil, 0, time.Time{}
}
