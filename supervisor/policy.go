package supervisor

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy says how a supervisor treats a crashing child: how long it waits
// before a restart, how many restarts it tolerates before giving the problem
// to its own parent, and how often a message may crash an actor before it is
// given up.
type Policy struct {
	MinBackoff time.Duration // delay before the first restart
	MaxBackoff time.Duration // the delay never exceeds this, jitter included
	Multiplier float64       // growth of the delay per consecutive failure (>= 1)
	Jitter     float64       // fraction in [0, 1]: the delay is drawn uniformly within ±Jitter of the nominal one

	// More than MaxRestarts failures of one child within Window escalate
	// to the supervisor's parent instead of restarting (restart intensity).
	// MaxRestarts 0 escalates the first failure.
	MaxRestarts int
	Window      time.Duration

	// A child whose last failure is at least ResetAfter ago starts over from
	// MinBackoff. 0 never resets (only escalation does).
	ResetAfter time.Duration

	// A message that crashed its actor this many times is given up rather
	// than redelivered (SPEC §6: a task that crashes its actor 3 times fails).
	MaxRedeliveries int
}

// DefaultPolicy is the production policy: restarts after 10ms, 20ms, 40ms …
// up to 5s, ±20% jitter, at most 10 restarts in 30s, calm after 30s, and a
// message is given up after crashing its actor 3 times.
func DefaultPolicy() Policy {
	return Policy{
		MinBackoff:      10 * time.Millisecond,
		MaxBackoff:      5 * time.Second,
		Multiplier:      2,
		Jitter:          0.2,
		MaxRestarts:     10,
		Window:          30 * time.Second,
		ResetAfter:      30 * time.Second,
		MaxRedeliveries: 3,
	}
}

// Validate reports every field out of range.
func (p Policy) Validate() error {
	var errs []error
	if p.MinBackoff < 0 {
		errs = append(errs, fmt.Errorf("min_backoff (%s) must be >= 0", p.MinBackoff))
	}
	if p.MaxBackoff < p.MinBackoff {
		errs = append(errs, fmt.Errorf("max_backoff (%s) must be >= min_backoff (%s)", p.MaxBackoff, p.MinBackoff))
	}
	if !(p.Multiplier >= 1) || math.IsInf(p.Multiplier, 0) { // !(>=) also rejects NaN
		errs = append(errs, fmt.Errorf("multiplier (%g) must be a finite number >= 1", p.Multiplier))
	}
	if !(p.Jitter >= 0 && p.Jitter <= 1) {
		errs = append(errs, fmt.Errorf("jitter (%g) must be within [0, 1]", p.Jitter))
	}
	if p.MaxRestarts < 0 {
		errs = append(errs, fmt.Errorf("max_restarts (%d) must be >= 0", p.MaxRestarts))
	}
	if p.Window <= 0 {
		errs = append(errs, fmt.Errorf("window (%s) must be > 0", p.Window))
	}
	if p.ResetAfter < 0 {
		errs = append(errs, fmt.Errorf("reset_after (%s) must be >= 0", p.ResetAfter))
	}
	if p.MaxRedeliveries < 1 {
		errs = append(errs, fmt.Errorf("max_redeliveries (%d) must be >= 1", p.MaxRedeliveries))
	}
	return errors.Join(errs...)
}

// Backoff is the nominal delay before restart number attempt (1-based):
// MinBackoff·Multiplier^(attempt-1), capped at MaxBackoff.
func (p Policy) Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	// Float arithmetic saturates to +Inf instead of overflowing, so the cap
	// holds for any attempt count.
	d := float64(p.MinBackoff) * math.Pow(p.Multiplier, float64(attempt-1))
	if d >= float64(p.MaxBackoff) {
		return p.MaxBackoff
	}
	return time.Duration(d)
}

// Jittered spreads d uniformly over ±Jitter using u, a uniform draw from
// [0, 1), so that children crashing together do not restart in lockstep. The
// result stays within [0, MaxBackoff].
func (p Policy) Jittered(d time.Duration, u float64) time.Duration {
	j := float64(d) * (1 + p.Jitter*(2*u-1))
	switch {
	case j <= 0:
		return 0
	case j >= float64(p.MaxBackoff):
		return p.MaxBackoff
	}
	return time.Duration(j)
}
