package limiter

import (
	"math"
	"sync/atomic"
)

// Reservoir is a small stock of tokens the limiter takes from its bucket
// ahead of demand, so that a worker can take one with an atomic operation
// instead of an AcquireToken round trip (DESIGN: the limiter can grant
// small batches of tokens). Only the limiter puts tokens in, and only while
// no caller waits in its queue, so no priority is bypassed; it empties the
// reservoir on a throttle, a pause and a new configuration. Workers only
// TryTake. Safe for concurrent use; a nil Reservoir is always empty.
type Reservoir struct {
	tokens atomic.Int64
	taken  atomic.Uint64 // taken since the limiter last counted them
}

// TryTake takes one token if there is one.
func (r *Reservoir) TryTake() bool {
	if r == nil {
		return false
	}
	for {
		n := r.tokens.Load()
		if n <= 0 {
			return false
		}
		if r.tokens.CompareAndSwap(n, n-1) {
			r.taken.Add(1)
			return true
		}
	}
}

// Len is the number of tokens in the reservoir.
func (r *Reservoir) Len() int64 {
	if r == nil {
		return 0
	}
	return r.tokens.Load()
}

func (r *Reservoir) put(n int64) { r.tokens.Add(n) }

// empty takes back every token still there; they are spent (the bucket
// already counted them), which errs on the side of sending less.
func (r *Reservoir) empty() {
	if r != nil {
		r.tokens.Store(0)
	}
}

// collect returns how many tokens were taken since the last collect.
func (r *Reservoir) collect() uint64 {
	if r == nil {
		return 0
	}
	return r.taken.Swap(0)
}

// reservoirSeconds is how much of the rate the reservoir holds: 10 ms of
// tokens keeps a burst from it small while most calls at high rates skip
// the round trip.
const reservoirSeconds = 0.01

// reservoirSize is how many tokens the reservoir holds at rate with a
// bucket of depth burst: at least one, at most the bucket.
func reservoirSize(rate float64, burst int) int64 {
	n := int64(math.Ceil(rate * reservoirSeconds))
	return min(max(n, 1), int64(max(burst, 1)))
}
