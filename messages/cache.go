package messages

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Cache tiers, as in the SPEC §6 actor names cache/l1, cache/l2, cache/l3.
const (
	TierL1 = "l1" // in memory, smallest and hottest
	TierL2 = "l2" // in memory, receives what L1 evicts
	TierL3 = "l3" // embedded persistent store, survives restarts
)

// CacheGet asks one cache tier for a key. Reply: *CacheResult.
//
// Lookup order (L1 → L2 → L3) and promotion are the caller's job: on a hit
// in a lower tier the caller sends a CachePut to the tiers above it, with
// TTL set to the seconds left until the hit's ExpiresAt, so that promotion
// never extends an entry's life.
type CacheGet struct {
	Key string
}

// CacheResult answers CacheGet. A disabled tier, an unknown key and an
// expired entry are all Found = false.
type CacheResult struct {
	Key       string
	Value     []byte // nil when not found; read-only: memory tiers share it
	Found     bool
	Tier      string    // TierL1, TierL2 or TierL3: the tier that answered
	ExpiresAt time.Time // when the entry expires; zero when not found or never
}

// CachePut stores a value in one tier. It is acknowledged with *CacheStored
// only when the message has a sender, so fire-and-forget Send is the cheap
// way to fill the cache. A disabled tier ignores it.
type CachePut struct {
	Key   string
	Value []byte  // the tier keeps it: do not modify it after sending
	TTL   float64 // seconds; 0 = cache.default_ttl
}

// CacheStored acknowledges a CachePut that had a sender. Stored is false
// when the tier did not keep the value; Err says why (disabled, or the L3
// store is unavailable or failed the write).
type CacheStored struct {
	Key    string
	Tier   string
	Stored bool
	Err    string // empty when stored
}

// CacheDelete removes a key from one tier (invalidation). It is applied even
// when the tier is disabled. No reply.
type CacheDelete struct {
	Key string
}

// CacheEvicted is an event a tier sends to the next tier down (L1 → L2,
// L2 → L3) when its bound pushes an entry out, so that eviction demotes
// instead of forgetting. The receiver stores it until ExpiresAt (zero: no
// expiry) and drops it if it has already expired. No reply.
type CacheEvicted struct {
	Key       string
	Value     []byte
	ExpiresAt time.Time
}

// CacheLookup asks cache/l2 for Key on the task path: L2 answers a hit
// itself, else hands the same message to L3, which answers hit or miss, so
// both tiers cost the caller one exchange. The tier that hits promotes the
// entry into L1 keeping its absolute expiry, so promotion never extends its
// life. The answer, *CacheLookedUp, goes to ReplyTo.
type CacheLookup struct {
	Ref     uint64 // caller's correlation id, echoed in the answer
	Key     string
	ReplyTo *actor.PID
}

// CacheLookedUp answers CacheLookup.
type CacheLookedUp struct {
	Ref       uint64
	Key       string
	Value     []byte // nil when not found; read-only
	Found     bool
	Tier      string    // TierL2 or TierL3 when found
	ExpiresAt time.Time // zero: never, or not found
}
