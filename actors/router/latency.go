package router

import (
	"math"
	"slices"
	"time"

	"github.com/deer-runtime/deer/messages"
)

// Latency window of /metrics' tasks.latency: the tasks finished in the last
// latencyWindow, at most the newest latencyKeep of them, so that a stats
// query sorts a bounded slice (about 50 µs of the router's time).
const (
	latencyWindow = 10 * time.Second
	latencyKeep   = 2048
)

// latencies is a ring of the newest finished tasks' latencies. No clock:
// the router passes the time in. Only the router's goroutine touches it.
type latencies struct {
	at      [latencyKeep]int64 // finish instants, unix nanoseconds
	seconds [latencyKeep]float64
	next    int // slot the next latency goes to
	n       int // slots filled, up to latencyKeep
	scratch []float64
}

// add records one task's latency, finished at now.
func (l *latencies) add(now time.Time, d time.Duration) {
	l.at[l.next], l.seconds[l.next] = now.UnixNano(), d.Seconds()
	l.next = (l.next + 1) % latencyKeep
	l.n = min(l.n+1, latencyKeep)
}

// stats gives the nearest-rank p50 and p99 of the latencies recorded
// within window before now; zero values when there are none.
func (l *latencies) stats(now time.Time, window time.Duration) messages.LatencyStats {
	from := now.Add(-window).UnixNano()
	l.scratch = l.scratch[:0]
	for i := range l.n {
		if l.at[i] > from {
			l.scratch = append(l.scratch, l.seconds[i])
		}
	}
	st := messages.LatencyStats{Window: window.Seconds(), Count: len(l.scratch)}
	if len(l.scratch) == 0 {
		return st
	}
	slices.Sort(l.scratch)
	st.P50, st.P99 = rank(l.scratch, 0.50), rank(l.scratch, 0.99)
	return st
}

// rank is the nearest-rank q-quantile of sorted (not empty).
func rank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}
