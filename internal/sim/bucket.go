package sim

import "time"

// bucket is the capacity check: a token bucket refilled at rate tokens per
// second holding at most one second's worth (and at least one token), so a
// steady load above rate sees rate requests per second admitted. It takes
// the time as an argument and is not safe for concurrent use.
type bucket struct {
	rate   float64 // tokens per second; 0 = unlimited
	tokens float64
	last   time.Time
}

func (b *bucket) burst() float64 { return max(1, b.rate) }

// reset sets the rate and fills the bucket, so a live capacity change starts
// from a clean second.
func (b *bucket) reset(rate float64, now time.Time) {
	b.rate, b.last = rate, now
	b.tokens = b.burst()
}

// allow takes a token if one is there at now.
func (b *bucket) allow(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.burst(), b.tokens+elapsed.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
