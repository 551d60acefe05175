// Package cache holds deer's three cache tiers (SPEC §5, §6): cache/l1 and
// cache/l2 in memory, cache/l3 in an embedded bbolt file under
// cache.l3_path that survives restarts, or, with cache.l3_backend =
// "redis", in the cluster's Redis, shared by every node (redis.go).
//
// The functional core is Store: a bounded map with per-entry expiry and an
// eviction policy (lru, lfu, fifo) that takes the time as an argument.
// DiskStore puts L3's values in bbolt and keeps its index in a Store, so
// the bound and the policy behave the same in every tier. Front is L1's
// Store behind a mutex, so that the router reads L1 without a message
// (DESIGN "The hot path stays short"); cache/l1 is its only writer. actor.go
// is the shell: one Actor per tier answering messages.CacheLookup,
// CacheGet, CachePut, CacheDelete and CacheEvicted, plus the status, stats,
// config and ping messages every actor answers.
//
// Division of work between the tiers and their caller (the router):
//   - L1: the caller calls Front.Lookup at admission, on its own goroutine.
//     A hit is the answer; no message is sent.
//   - L2 and L3: on an L1 miss the caller sends one messages.CacheLookup to
//     cache/l2 and gets one messages.CacheLookedUp back, at ReplyTo (or at
//     the sender, when asked with Request and no ReplyTo). L2 answers a hit
//     itself; on a miss it hands the same message to L3 (Deps.Next), which
//     answers hit or miss. Without a tier below running, L2 answers the
//     miss. A disabled tier answers a miss at once; L3 without its store
//     (cache.l3_path unusable) answers a miss and counts it.
//   - Promotion: the tier that hits sends the entry to cache/l1 (Deps.Top)
//     with its absolute expiry, so that promotion never extends its life,
//     before it answers: once the caller has the answer, L1 has the entry
//     queued ahead of anything the caller sends it next. L1 keeps an
//     entry it already holds live (a newer answer put meanwhile). L2 then
//     drops its copy, since L1 hands the entry back when it evicts it, and
//     an exclusive L1/L2 holds more distinct entries; L3 keeps its copy.
//   - Writes: after a 2xx answer the caller sends a fire-and-forget
//     messages.CachePut to cache/l1 and to cache/l3 (write-through, so the
//     entry survives restarts). L2 is filled only by L1's evictions.
//     Invalidation is a CacheDelete to each tier, also the caller's job.
//   - Eviction demotes: what L1's bound pushes out is sent to L2 as a
//     messages.CacheEvicted, and L2's to L3, keeping its expiry. L3 is the
//     last tier; what it evicts is gone. Expired entries are never demoted
//     nor promoted, and every tier checks expiry on every read.
//   - CacheGet asks one tier for itself only, without promotion: for
//     tools, tests and callers that want to look at a tier.
//
// Counters: each tier counts the hits and misses of the reads it served
// (L1's include the router's Front lookups), its evictions and its expired
// entries. A lookup that missed L1 and L2 reaches L3, so L3's misses are
// the lookups that missed every tier (cache_stats' misses), those an
// unavailable L3 answered included; only while no cache/l3 is registered
// does L2 answer such a miss itself, and then nobody counts it as missing
// every tier.
//
// Restarts: L1's entries live in the Front, which outlives cache/l1; a
// restarted (or stopped) L1 leaves them in place, the router is served
// meanwhile, and the new incarnation takes them over under the
// configuration then in force, as the limiter and the breaker keep their
// state. L2 loses its entries when its actor restarts. L3 reloads its index
// from the file. A message a tier crashed on is redelivered by its
// supervisor, so a crash does not lose a lookup's answer.
//
// With enable_advanced_optimization off the cache is disabled: tiers keep
// their entries (TTL still holds) but every read misses without being
// counted (Front.Lookup included) and CachePut, CacheEvicted and
// promotions are ignored; CacheDelete still applies. Turning it back on
// serves the surviving entries again.
package cache
