package breaker

import (
	"testing"
	"time"
)

// The window's buckets, at fixed instants: what is counted where, and
// what the window holds as it rolls.
func TestWindowBuckets(t *testing.T) {
	ms := time.Millisecond
	type hold struct {
		at              time.Duration
		calls, failures int64
	}
	cases := []struct {
		name  string
		fill  func(w *window)
		holds []hold
	}{
		{"failures roll out a bucket at a time", func(w *window) {
			w.add(t0, 1, 1)
			w.add(t0.Add(999*ms), 1, 1)
			w.add(t0.Add(1*s), 1, 0)
		}, []hold{{0, 2, 2}, {999 * ms, 2, 2}, {9 * s, 3, 2}, {10*s - 1, 3, 2}, {10 * s, 1, 0}, {11 * s, 0, 0}}},
		{"an instant before the first falls in bucket -1", func(w *window) {
			w.add(t0, 0, 0) // the origin
			w.add(t0.Add(-500*ms), 1, 1)
		}, []hold{{0, 1, 1}, {8 * s, 1, 1}, {9 * s, 0, 0}}},
		{"spread evenly, rounded so that the shares add up", func(w *window) {
			w.add(t0, 0, 0)
			w.spread(t0, t0.Add(3500*ms), 7) // 2, 2, 2, 1
		}, []hold{{3500 * ms, 7, 0}, {10 * s, 5, 0}, {11 * s, 3, 0}, {12 * s, 1, 0}, {13 * s, 0, 0}}},
		{"one call spread over three buckets lands in one", func(w *window) {
			w.add(t0, 0, 0)
			w.spread(t0, t0.Add(3*s), 1)
		}, []hold{{3 * s, 1, 0}, {11 * s, 0, 0}}},
		{"the share before the window is dropped", func(w *window) {
			w.add(t0, 0, 0)
			// 10 a second; at t0+5s the window reaches back to t0-4s, at
			// t0+10s to t0+1s.
			w.spread(t0.Add(-100*s), t0.Add(5*s), 1050)
		}, []hold{{5 * s, 90, 0}, {10 * s, 40, 0}}},
		{"calls at one instant go to its bucket", func(w *window) {
			w.spread(t0.Add(2*s), t0.Add(2*s), 4)
		}, []hold{{2 * s, 4, 0}, {11 * s, 4, 0}, {12 * s, 0, 0}}},
		{"a slot reused for a newer bucket keeps the older's counts out", func(w *window) {
			w.add(t0, 5, 5)
			w.add(t0.Add(10*s), 1, 0) // same slot, ten buckets later
			w.add(t0, 5, 5)           // late: dropped
		}, []hold{{10 * s, 1, 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWindow(10 * s)
			c.fill(&w)
			for _, h := range c.holds {
				if calls, failures := w.sums(t0.Add(h.at)); calls != h.calls || failures != h.failures {
					t.Errorf("at t0+%v: %d calls, %d failures; want %d, %d", h.at, calls, failures, h.calls, h.failures)
				}
			}
		})
	}
}

// A window shorter than ten nanoseconds still has buckets.
func TestWindowTiny(t *testing.T) {
	w := newWindow(1)
	w.add(t0, 1, 1)
	if c, f := w.sums(t0); c != 1 || f != 1 {
		t.Fatalf("%d calls, %d failures", c, f)
	}
	if c, _ := w.sums(t0.Add(10)); c != 0 {
		t.Fatalf("%d calls 10ns later", c)
	}
}
