package clock

import (
	"testing"
	"time"
)

func TestAlarm(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(t0)
	var a Alarm
	var fired []uint64
	fire := func(gen uint64) { fired = append(fired, gen) }

	a.Set(c, t0.Add(2*time.Second), fire)
	a.Set(c, t0.Add(2*time.Second), fire) // same due: the pending timer stays
	if n := len(c.Pending()); n != 1 {
		t.Fatalf("pending timers = %d, want 1", n)
	}
	a.Set(c, t0.Add(time.Second), fire) // earlier: replaces it
	c.Advance(3 * time.Second)
	if len(fired) != 1 || !a.Fired(fired[0]) {
		t.Fatalf("fired %v: want one current firing", fired)
	}
	// A firing of a replaced timer is not current.
	a.Set(c, t0.Add(4*time.Second), fire)
	stale := a.gen - 1
	if a.Fired(stale) {
		t.Fatal("a stale generation counted as fired")
	}
	a.Stop()
	c.Advance(time.Hour)
	if len(fired) != 1 {
		t.Fatalf("a stopped alarm fired: %v", fired)
	}
}
