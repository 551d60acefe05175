package limiter

import "time"

// The retry budget (SPEC §5): over the last rate_limit.window_size seconds,
// the retries an upstream is sent stay within RetryPercent of its first
// attempts plus RetryFloor, so that an outage does not multiply traffic.
// The floor lets a quiet upstream retry at all: with 3 first attempts in a
// window, 20% alone would allow none.
const (
	RetryPercent = 20
	RetryFloor   = 10
	budgetSlots  = 10
)

// Budget is the retry budget's core: counts of first attempts and of
// granted retries in ten slots of a tenth of the window each. A count stays
// in the window while its slot is one of the last ten (the current one
// included): between 0.9 and 1 window after it was made. Time is passed
// in; no goroutines; not safe for concurrent use. The zero value is not
// ready: use NewBudget.
type Budget struct {
	slotLen  time.Duration
	slot     [budgetSlots]int64 // slot number (UnixNano / slotLen) each count belongs to
	requests [budgetSlots]uint64
	retries  [budgetSlots]uint64
}

// NewBudget returns an empty budget over window (1s when window <= 0).
func NewBudget(window time.Duration) *Budget {
	b := &Budget{}
	b.setSlotLen(window)
	return b
}

func (b *Budget) setSlotLen(window time.Duration) {
	if window <= 0 {
		window = time.Second
	}
	b.slotLen = max(window/budgetSlots, time.Millisecond)
}

// Window returns the span the budget counts over.
func (b *Budget) Window() time.Duration { return b.slotLen * budgetSlots }

// at returns the index of now's slot, cleared if it held an older one.
func (b *Budget) at(now time.Time) int {
	n := now.UnixNano() / int64(b.slotLen)
	i := int(n % budgetSlots)
	if i < 0 {
		i += budgetSlots
	}
	if b.slot[i] != n {
		b.slot[i], b.requests[i], b.retries[i] = n, 0, 0
	}
	return i
}

// Counts returns the first attempts and the granted retries in the window
// at now.
func (b *Budget) Counts(now time.Time) (requests, retries uint64) {
	n := now.UnixNano() / int64(b.slotLen)
	for i, s := range b.slot {
		if s > n-budgetSlots && s <= n {
			requests += b.requests[i]
			retries += b.retries[i]
		}
	}
	return requests, retries
}

// Available returns how many retries would be granted at now.
func (b *Budget) Available(now time.Time) int {
	requests, retries := b.Counts(now)
	limit := requests*RetryPercent/100 + RetryFloor
	if retries >= limit {
		return 0
	}
	return int(min(limit-retries, uint64(1<<31-1)))
}

// Request counts n first attempts (n < 1 counts one).
func (b *Budget) Request(now time.Time, n int) {
	b.requests[b.at(now)] += uint64(max(n, 1))
}

// Retry grants n retries (n < 1: one) if they fit in the budget, and counts
// them; otherwise it counts nothing and reports false. All n or none.
func (b *Budget) Retry(now time.Time, n int) bool {
	n = max(n, 1)
	if b.Available(now) < n {
		return false
	}
	b.retries[b.at(now)] += uint64(n)
	return true
}

// SetWindow changes the window. The counts within the old window move, as
// totals, into now's slot: nothing counted is forgotten or counted twice,
// and they leave the new window as if made now.
func (b *Budget) SetWindow(now time.Time, window time.Duration) {
	requests, retries := b.Counts(now)
	old := b.slotLen
	b.setSlotLen(window)
	if b.slotLen == old {
		return
	}
	*b = Budget{slotLen: b.slotLen}
	i := b.at(now)
	b.requests[i], b.retries[i] = requests, retries
}
