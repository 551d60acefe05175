package breaker

import (
	"math"
	"time"
)

// Buckets is how many fixed buckets a breaker's failure window is cut into:
// the window rolls forward a bucket (a tenth of failure_window) at a time.
const Buckets = 10

// window counts calls and failures over the last failure_window in
// Buckets fixed buckets of width failure_window/Buckets. Bucket k counts
// what happened in [origin + k·width, origin + (k+1)·width); at an instant
// in bucket k the window holds buckets k-Buckets+1 … k, so it reaches back
// between 9 and 10 tenths of failure_window: nothing older than the window
// is ever counted. Bucket numbers come from time.Time.Sub, which uses the
// monotonic clock when both instants carry it. Time is passed in.
type window struct {
	width  time.Duration
	origin time.Time // bucket 0 starts here: the first instant counted
	slot   [Buckets]bucket
}

type bucket struct {
	n               int64 // which bucket this slot counts; see window.clear
	calls, failures int64
}

func newWindow(d time.Duration) window {
	w := window{width: max(d/Buckets, 1)}
	w.clear()
	return w
}

// clear forgets every count.
func (w *window) clear() {
	for i := range w.slot {
		w.slot[i] = bucket{n: math.MinInt64} // never current: n > k-Buckets fails
	}
}

// num returns the number of the bucket holding t (floor division, so that
// an instant before origin falls in a negative bucket, not in bucket 0).
func (w *window) num(t time.Time) int64 {
	if w.origin.IsZero() {
		w.origin = t
	}
	d := int64(t.Sub(w.origin))
	k := d / int64(w.width)
	if d%int64(w.width) < 0 {
		k--
	}
	return k
}

func (w *window) start(k int64) time.Time {
	return w.origin.Add(time.Duration(k) * w.width)
}

// in adds to bucket k as seen from bucket now: dropped when k has left the
// window (its slot may already count a newer bucket).
func (w *window) in(now, k, calls, failures int64) {
	if k <= now-Buckets || k > now {
		return
	}
	s := &w.slot[((k%Buckets)+Buckets)%Buckets]
	switch {
	case s.n > k:
		return
	case s.n < k:
		*s = bucket{n: k}
	}
	s.calls += calls
	s.failures += failures
}

// add counts calls and failures at now.
func (w *window) add(now time.Time, calls, failures int64) {
	k := w.num(now)
	w.in(k, k, calls, failures)
}

// spread counts n calls known to have happened in (from, now] but not
// when: evenly over that span, each bucket taking the share of the span it
// covers (the shares are rounded so that they add up). The share before
// the window is dropped. For steady traffic the estimate is exact; a burst
// is smeared over the span.
func (w *window) spread(from, now time.Time, n int64) {
	if n <= 0 {
		return
	}
	if !from.Before(now) {
		w.add(now, n, 0)
		return
	}
	total := float64(now.Sub(from))
	cum := func(t time.Time) int64 { // calls up to t
		return int64(math.Round(float64(n) * float64(t.Sub(from)) / total))
	}
	last := w.num(now)
	k := max(w.num(from), last-Buckets+1)
	lo := from
	if s := w.start(k); s.After(lo) {
		lo = s
	}
	for ; k <= last; k++ {
		hi := now
		if e := w.start(k + 1); e.Before(hi) {
			hi = e
		}
		w.in(last, k, cum(hi)-cum(lo), 0)
		lo = hi
	}
}

// sums returns the calls and failures in the window at now.
func (w *window) sums(now time.Time) (calls, failures int64) {
	k := w.num(now)
	for _, s := range w.slot {
		if s.n > k-Buckets && s.n <= k {
			calls += s.calls
			failures += s.failures
		}
	}
	return calls, failures
}
