package sim

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// maxAsked bounds the bodies remembered after a 429; beyond it the oldest
// half is forgotten (a retry of a forgotten body is not counted).
const maxAsked = 100_000

// RetryAfterStats tells whether clients wait as a 429's Retry-After asks.
// A 429 remembers the request's body; a later request with the same body is
// a retry of it. Clients that send the same body for different requests
// (a load generator's fixed body) make every repeat count as a retry, so
// the numbers mean something only when each request's body is distinct.
type RetryAfterStats struct {
	// Asked counts the 429 answers that started a wait.
	Asked int64 `json:"asked"`
	// Retried counts requests that repeated a body answered 429.
	Retried int64 `json:"retried"`
	// Early counts the retries sent before Retry-After had passed.
	Early int64 `json:"early"`
	// MinWaitMS is the shortest time from a 429 to its retry, milliseconds
	// (0 when there was no retry).
	MinWaitMS float64 `json:"min_wait_ms"`
}

// waits follows 429 answers to their retries; safe for concurrent use.
type waits struct {
	seed maphash.Seed
	mu   sync.Mutex
	told map[uint64]asked // body hash → the 429 that asked it to wait
	st   RetryAfterStats
	min  time.Duration
}

type asked struct {
	at, until time.Time
}

func newWaits() *waits { return &waits{seed: maphash.MakeSeed(), told: map[uint64]asked{}} }

// asked records that body was answered 429 at now with Retry-After wait.
func (w *waits) asked(body []byte, now time.Time, wait time.Duration) {
	h := maphash.Bytes(w.seed, body)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.told) >= maxAsked {
		w.forgetOldest()
	}
	w.told[h] = asked{at: now, until: now.Add(wait)}
	w.st.Asked++
}

// arrived checks a request's body against the 429s still waiting for a
// retry. It hashes nothing while none is.
func (w *waits) arrived(body []byte, now time.Time) {
	w.mu.Lock()
	pending := len(w.told) > 0
	w.mu.Unlock()
	if !pending {
		return
	}
	h := maphash.Bytes(w.seed, body)
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.told[h]
	if !ok {
		return
	}
	delete(w.told, h)
	w.st.Retried++
	if now.Before(a.until) {
		w.st.Early++
	}
	if gap := now.Sub(a.at); w.st.Retried == 1 || gap < w.min {
		w.min = gap
	}
}

// forgetOldest drops the older half of the remembered 429s. Callers hold mu.
func (w *waits) forgetOldest() {
	times := make([]time.Time, 0, len(w.told))
	for _, a := range w.told {
		times = append(times, a.at)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/2]
	for h, a := range w.told {
		if !a.at.After(cut) {
			delete(w.told, h)
		}
	}
}

func (w *waits) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.told = map[uint64]asked{}
	w.st, w.min = RetryAfterStats{}, 0
}

func (w *waits) snapshot() RetryAfterStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.st
	s.MinWaitMS = float64(w.min.Microseconds()) / 1e3
	return s
}
