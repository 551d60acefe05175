// Package cache holds deer's three cache tiers (SPEC §5, §6): cache/l1 and
// cache/l2 in memory, cache/l3 in an embedded bbolt file under
// cache.l3_path that survives restarts.
//
// The functional core is Store: a bounded map with per-entry expiry and an
// eviction policy (lru, lfu, fifo) that takes the time as an argument.
// DiskStore puts L3's values in bbolt and keeps its index in a Store, so
// the bound and the policy behave the same in every tier. actor.go is the
// shell: one Actor per tier answering messages.CacheGet, CachePut,
// CacheDelete and CacheEvicted, plus the status, stats, config and ping
// messages every actor answers.
//
// Division of work between the tiers and their caller (the worker):
//   - Each tier answers only for itself. The caller looks up L1, then L2,
//     then L3, and promotes a hit by putting it into the tiers above with
//     the TTL it has left (CacheResult.ExpiresAt), so promotion never
//     extends an entry's life.
//   - Eviction demotes: what L1's bound pushes out is sent to L2 as a
//     messages.CacheEvicted, and L2's to L3, keeping its expiry. L3 is the
//     last tier; what it evicts is gone. Expired entries are never demoted.
//   - Where new values are written (L1 only, or L1 and L3 so that they
//     survive a restart) and invalidation across tiers (a CacheDelete to
//     each) are the caller's choice.
//   - The memory tiers lose their entries when their actor restarts; L3
//     reloads its index from the file.
//
// With enable_advanced_optimization off the cache is disabled: tiers keep
// their entries (TTL still holds) but every CacheGet misses without being
// counted and CachePut and CacheEvicted are ignored; CacheDelete still
// applies. Turning it back on serves the surviving entries again.
package cache
