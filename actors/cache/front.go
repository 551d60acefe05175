package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// Front is L1's store made readable by other goroutines, so that the router
// checks L1 at admission without a message exchange (DESIGN "The hot path
// stays short").
//
// Concurrency contract: the router (any number of goroutines, in fact) calls
// Lookup; cache/l1 alone writes: it puts, demotes, deletes, purges, resizes,
// switches the policy and turns the cache on and off, each through the
// Front's unexported owner methods, on its own goroutine. A lookup is not a
// pure read: it moves the entry in the LRU/LFU order, counts a hit or a miss
// and removes an entry it finds expired, which is why every operation, reads
// included, takes the one mutex. Lookup never evicts, so entries leave by the
// size bound only on the owner's writes, which demote them to L2.
//
// The Front outlives its actor: when cache/l1 restarts, the new incarnation
// takes the entries over (re-applying the configuration then in force), and
// the router keeps being served meanwhile. TTL holds regardless: Lookup
// checks expiry against the time it is given.
//
// A new Front is disabled and empty: it misses, without counting, until
// cache/l1 starts. A nil *Front always misses.
type Front struct {
	enabled atomic.Bool // enable_advanced_optimization; off: Lookup misses uncounted

	mu    sync.Mutex
	store *Store
	meter *meter // the owner's Prometheus counters; nil until it attaches
}

// NewFront returns an empty, disabled Front for cache/l1 to own.
func NewFront() *Front {
	return &Front{store: NewStore(0, LRU)}
}

// Lookup returns key's value and expiry (zero: never) when L1 holds it live
// at now. A hit counts as an access (recency, frequency) and as an L1 hit, a
// miss as an L1 miss; while the cache is disabled it misses without
// counting. value is shared with the store and with every other reader: do
// not modify it. A miss does not allocate.
func (f *Front) Lookup(now time.Time, key string) (value []byte, expiresAt time.Time, ok bool) {
	if f == nil || !f.enabled.Load() {
		return nil, time.Time{}, false
	}
	f.mu.Lock()
	e, o := f.store.Lookup(now, key)
	f.syncLocked()
	f.mu.Unlock()
	if o != Hit {
		return nil, time.Time{}, false
	}
	return e.Value, e.ExpiresAt, true
}

// The owner's side: called by cache/l1 only, on its own goroutine.

// attach makes the Front keep m up to date on every operation, lookups
// included, so that the Prometheus counters never wait for an L1 message.
// The watermark of what was already added survives the owner's restarts,
// so a new incarnation neither loses nor repeats counts.
func (f *Front) attach(m tierMetrics) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.meter == nil {
		f.meter = &meter{}
	}
	f.meter.m = m
	f.syncLocked()
}

// setEnabled turns serving on or off; entries are kept either way.
func (f *Front) setEnabled(on bool) { f.enabled.Store(on) }

func (f *Front) syncLocked() {
	if f.meter != nil {
		f.meter.sync(f.store.Len(), f.store.counters)
	}
}

// frontStore is cache/l1's backend when it has a Front: the Front's store,
// every operation under its lock.
type frontStore struct{ f *Front }

var _ backend = frontStore{}

func (s frontStore) Get(now time.Time, key string) (Entry, bool, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	e, o := s.f.store.Lookup(now, key)
	s.f.syncLocked()
	return e, o == Hit, nil
}

func (s frontStore) PutUntil(key string, value []byte, exp time.Time) ([]Entry, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	ev := s.f.store.PutUntil(key, value, exp)
	s.f.syncLocked()
	return ev, nil
}

func (s frontStore) Delete(key string) (bool, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	ok := s.f.store.Delete(key)
	s.f.syncLocked()
	return ok, nil
}

func (s frontStore) Resize(n int) ([]Entry, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	ev := s.f.store.Resize(n)
	s.f.syncLocked()
	return ev, nil
}

func (s frontStore) SetPolicy(p Policy) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.store.SetPolicy(p)
}

func (s frontStore) PurgeExpired(now time.Time) ([]string, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	keys := s.f.store.PurgeExpired(now)
	s.f.syncLocked()
	return keys, nil
}

func (s frontStore) holds(now time.Time, key string) bool {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return holds(s.f.store, now, key)
}

func (s frontStore) stats() (entries, capacity int, c Counters) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.store.Len(), s.f.store.Cap(), s.f.store.counters
}

// Close leaves the entries to the next incarnation of cache/l1.
func (s frontStore) Close() error { return nil }
