package clock

import "time"

// Alarm is an actor's one rescheduled wake-up. Set arms it for a due time
// (keeping a pending timer that is already due then), Stop disarms it, and
// each firing carries the generation it was armed with, so that Fired tells
// a current firing from one of a timer that was replaced meanwhile. Like
// the rest of an actor's state it is used from the actor's goroutine only.
type Alarm struct {
	timer Timer
	due   time.Time
	gen   uint64
}

// Set arms the alarm to call fire(gen) at due on c.
func (a *Alarm) Set(c Clock, due time.Time, fire func(gen uint64)) {
	if a.timer != nil && a.due.Equal(due) {
		return
	}
	a.Stop()
	gen := a.gen
	a.due = due
	a.timer = c.AfterFunc(due.Sub(c.Now()), func() { fire(gen) })
}

// Stop disarms the alarm; a firing already under way is then not Fired.
func (a *Alarm) Stop() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.gen++
}

// Fired reports whether a firing with gen is the current one, and if so
// marks the alarm as no longer pending.
func (a *Alarm) Fired(gen uint64) bool {
	if gen != a.gen {
		return false
	}
	a.timer = nil
	return true
}
