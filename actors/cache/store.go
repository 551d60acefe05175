package cache

import (
	"container/list"
	"sort"
	"time"
)

// Entry is one cached value and the metadata eviction needs.
type Entry struct {
	Key   string
	Value []byte // nil in the L3 index, whose values stay on disk
	// ExpiresAt is when the entry stops being served; zero means never.
	ExpiresAt time.Time
	// Inserted and Accessed are store-wide sequence numbers of the entry's
	// insertion and last access. Sequence numbers, not instants, order the
	// entries, so that many operations at one instant still have an order.
	Inserted, Accessed uint64
	// Hits counts accesses, the put that inserted the entry included: the
	// LFU frequency.
	Hits uint64
}

// Expired reports whether e is past its expiry at now.
func (e Entry) Expired(now time.Time) bool {
	return !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt)
}

// Counters are a store's running totals.
type Counters struct {
	Hits      uint64 // Get/Lookup found a live entry
	Misses    uint64 // Get/Lookup found nothing, or an expired entry
	Evictions uint64 // entries pushed out by the size bound
	Expired   uint64 // entries removed because their TTL ended
}

// Outcome is the result of a Lookup.
type Outcome int

const (
	Miss    Outcome = iota // no such key
	Hit                    // a live entry
	Expired                // the entry had expired; it is removed
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Hit:
		return "hit"
	case Expired:
		return "expired"
	}
	return "miss"
}

// Store is a bounded key/value map with per-entry expiry and a pluggable
// eviction policy. It is the functional core shared by all three tiers: it
// never reads the clock (callers pass now) and starts no goroutines. It is
// not safe for concurrent use; its actor is its only user.
type Store struct {
	capacity int
	policy   Policy
	items    map[string]*node
	order    order
	seq      uint64
	counters Counters
}

type node struct {
	Entry
	elem   *list.Element // position in the order
	bucket *list.Element // LFU: the frequency bucket holding elem
}

// NewStore returns an empty store holding at most capacity entries. A
// capacity of 0 or less holds nothing: every Put evicts what it adds, so a
// zero-size tier passes everything down to the next.
func NewStore(capacity int, p Policy) *Store {
	return &Store{
		capacity: max(capacity, 0),
		policy:   p,
		items:    make(map[string]*node),
		order:    newOrder(p),
	}
}

// Len is the number of entries held, expired ones not yet removed included.
func (s *Store) Len() int { return len(s.items) }

// Cap is the size bound.
func (s *Store) Cap() int { return s.capacity }

// Policy is the eviction policy in force.
func (s *Store) Policy() Policy { return s.policy }

// Counters returns the running totals.
func (s *Store) Counters() Counters { return s.counters }

// Lookup finds key at now. A hit counts as an access (LRU/LFU order) and
// returns the entry with its updated metadata; an expired entry is removed
// and reported as Expired (counted as a miss and as expired).
func (s *Store) Lookup(now time.Time, key string) (Entry, Outcome) {
	n, ok := s.items[key]
	if !ok {
		s.counters.Misses++
		return Entry{}, Miss
	}
	if n.Expired(now) {
		s.unlink(n)
		s.counters.Misses++
		s.counters.Expired++
		return Entry{}, Expired
	}
	s.access(n)
	s.counters.Hits++
	return n.Entry, Hit
}

// Get returns the live value of key at now.
func (s *Store) Get(now time.Time, key string) ([]byte, bool) {
	e, o := s.Lookup(now, key)
	return e.Value, o == Hit
}

// Put stores value under key for ttl (ttl <= 0: no expiry) and returns the
// entries the size bound evicted, in eviction order, so the caller can
// demote them. Overwriting a key counts as an access to it.
func (s *Store) Put(now time.Time, key string, value []byte, ttl time.Duration) []Entry {
	var exp time.Time
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	return s.PutUntil(key, value, exp)
}

// PutUntil is Put with an absolute expiry (zero: none), for entries demoted
// from another tier, which keep the expiry they had.
func (s *Store) PutUntil(key string, value []byte, expiresAt time.Time) []Entry {
	if n, ok := s.items[key]; ok {
		n.Value, n.ExpiresAt = value, expiresAt
		s.access(n)
		return nil
	}
	s.seq++
	n := &node{Entry: Entry{Key: key, Value: value, ExpiresAt: expiresAt, Inserted: s.seq, Accessed: s.seq, Hits: 1}}
	s.items[key] = n
	s.order.push(n)
	return s.evictOverflow()
}

// Delete removes key and reports whether it was there.
func (s *Store) Delete(key string) bool {
	n, ok := s.items[key]
	if ok {
		s.unlink(n)
	}
	return ok
}

// Resize changes the size bound; when it shrinks below Len, the overflow is
// evicted by policy and returned.
func (s *Store) Resize(capacity int) []Entry {
	s.capacity = max(capacity, 0)
	return s.evictOverflow()
}

// SetPolicy switches the eviction policy, keeping every entry: the new
// order is rebuilt from the entries' metadata, as if the new policy had
// been in force all along. O(n log n).
func (s *Store) SetPolicy(p Policy) {
	if p == s.policy {
		return
	}
	s.policy = p
	s.rebuild()
}

// PurgeExpired removes every entry expired at now and returns their keys;
// len of the result is the count. It scans all entries: it runs once per
// cleanup interval, while reads drop expired entries on their own.
func (s *Store) PurgeExpired(now time.Time) []string {
	var keys []string
	for k, n := range s.items {
		if n.Expired(now) {
			s.unlink(n)
			keys = append(keys, k)
		}
	}
	s.counters.Expired += uint64(len(keys))
	sort.Strings(keys) // deterministic for callers and tests
	return keys
}

// Restore loads entries with their metadata as they are (a persistent
// tier's index on open), without counting hits or misses, then rebuilds the
// order and evicts and returns the overflow if the bound is now smaller.
// Later operations get sequence numbers above every restored one.
func (s *Store) Restore(entries []Entry) []Entry {
	for _, e := range entries {
		if old, ok := s.items[e.Key]; ok {
			s.unlink(old)
		}
		s.items[e.Key] = &node{Entry: e}
		s.seq = max(s.seq, e.Inserted, e.Accessed)
	}
	s.rebuild()
	return s.evictOverflow()
}

// Keys returns the keys in eviction order, next victim first.
func (s *Store) Keys() []string {
	keys := make([]string, 0, len(s.items))
	s.order.each(func(n *node) bool {
		keys = append(keys, n.Key)
		return true
	})
	return keys
}

func (s *Store) access(n *node) {
	s.seq++
	n.Accessed = s.seq
	n.Hits++
	s.order.touch(n)
}

func (s *Store) unlink(n *node) {
	s.order.remove(n)
	delete(s.items, n.Key)
}

func (s *Store) evictOverflow() []Entry {
	var out []Entry
	for len(s.items) > s.capacity {
		v := s.order.victim()
		s.unlink(v)
		s.counters.Evictions++
		out = append(out, v.Entry)
	}
	return out
}

// rebuild orders all entries for the current policy: ascending by what the
// policy evicts first, pushed in that order.
func (s *Store) rebuild() {
	nodes := make([]*node, 0, len(s.items))
	for _, n := range s.items {
		nodes = append(nodes, n)
	}
	less := func(a, b *node) bool { return a.Accessed < b.Accessed }
	switch s.policy {
	case FIFO:
		less = func(a, b *node) bool { return a.Inserted < b.Inserted }
	case LFU:
		less = func(a, b *node) bool {
			if a.Hits != b.Hits {
				return a.Hits < b.Hits
			}
			return a.Accessed < b.Accessed
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		if less(nodes[i], nodes[j]) != less(nodes[j], nodes[i]) {
			return less(nodes[i], nodes[j])
		}
		return nodes[i].Key < nodes[j].Key // equal metadata: stable, deterministic
	})
	s.order = newOrder(s.policy)
	for _, n := range nodes {
		s.order.push(n)
	}
}
