package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deer-runtime/deer/internal/cluster"
)

// Where L3 lives in Redis (cache.l3_backend = "redis"). Every node of the
// cluster uses the same keys, so an entry one node wrote is a hit on all.
var (
	redisIdx    = cluster.Key("l3", "idx") // sorted set: cache key → eviction order
	redisSeq    = cluster.Key("l3", "seq") // counter giving the order its numbers
	redisPrefix = cluster.Key("l3", "v") + ":"
)

// redisValueKey is where the value of cache key k lives. The "v" part keeps
// values apart from idx and seq whatever the key (real keys are 43-byte
// base64url hashes, test keys are anything).
func redisValueKey(k string) string { return redisPrefix + k }

// Timeouts of the Redis store. callTimeout bounds one call below the
// client's own timeouts: go-redis retries a refused dial five times 100 ms
// apart, and a lookup that slow is worth less than the miss. After a
// failure the store answers with that failure for retryAfter without
// calling Redis, so a Redis that is down costs the actor one slow call per
// retryAfter, not one per lookup.
const (
	callTimeout = 250 * time.Millisecond
	retryAfter  = time.Second
)

// purgeBatch bounds how many index members one PurgeExpired checks.
const purgeBatch = 512

// The scripts: each operation is one round trip (EVALSHA; after a Redis
// restart go-redis falls back to EVAL once). The order is a sequence
// number from INCR, not a clock, so that nodes with skewed clocks (and
// tests on a fake clock) still agree on it.

// trimLua evicts the lowest-scored members beyond ARGV[cap] and deletes
// their values; it leaves the evicted members in `evicted` and the index
// size in `n`. Shared by put and resize.
const trimLua = `
local n = redis.call('ZCARD', KEYS[1])
local evicted = {}
if n > cap then
  evicted = redis.call('ZRANGE', KEYS[1], 0, n - cap - 1)
  for _, m in ipairs(evicted) do redis.call('DEL', prefix .. m) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1)
  n = cap
end
`

// putScript: KEYS idx, seq, value key; ARGV member, payload, ttl ms (0:
// none), capacity, prefix, "nx" to keep an existing member's place (fifo).
// Returns {index size, evicted members}.
var putScript = redis.NewScript(`
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[3], ARGV[2])
end
local s = redis.call('INCR', KEYS[2])
if ARGV[6] == 'nx' then
  redis.call('ZADD', KEYS[1], 'NX', s, ARGV[1])
else
  redis.call('ZADD', KEYS[1], s, ARGV[1])
end
local cap, prefix = tonumber(ARGV[4]), ARGV[5]
` + trimLua + `
return {n, evicted}`)

// getScript: KEYS idx, seq, value key; ARGV member, "1" to move the member
// up (lru, lfu). A value Redis expired leaves its member behind: it is
// removed here. Returns {index size, 1 hit / 0 miss / 2 expired, value}.
var getScript = redis.NewScript(`
local v = redis.call('GET', KEYS[3])
if not v then
  local gone = redis.call('ZREM', KEYS[1], ARGV[1])
  return {redis.call('ZCARD', KEYS[1]), gone * 2, ''}
end
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[1], 'XX', redis.call('INCR', KEYS[2]), ARGV[1])
end
return {redis.call('ZCARD', KEYS[1]), 1, v}`)

// resizeScript: KEYS idx; ARGV capacity, prefix. Returns {index size,
// evicted members}.
var resizeScript = redis.NewScript(`
local cap, prefix = tonumber(ARGV[1]), ARGV[2]
` + trimLua + `
return {n, evicted}`)

// purgeScript: KEYS idx; ARGV start rank, count, prefix. Removes the
// members in that window whose value Redis expired. Returns {index size,
// removed members}.
var purgeScript = redis.NewScript(`
local start, count, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local removed = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], start, start + count - 1)) do
  if redis.call('EXISTS', prefix .. m) == 0 then
    redis.call('ZREM', KEYS[1], m)
    removed[#removed + 1] = m
  end
end
return {redis.call('ZCARD', KEYS[1]), removed}`)

// redisStore is L3 in the cluster's Redis: values with their expiry as
// Redis keys that Redis expires itself (SET … PX), and an index sorted set
// that bounds them to cache.l3_size, shared by every node. Each node trims
// to its own l3_size, so nodes should agree on it.
//
// The policy orders the index: lru moves an entry up on every read and
// write, fifo keeps its first write's place. lfu is served as lru: one
// score cannot hold both a count and a recency (noted in docs).
//
// Entries (stats) is the index size as of this node's last call: every
// script returns it, so reading it costs no round trip. Counters count this
// node's operations only.
//
// Not safe for concurrent use; the L3 actor is its only user.
type redisStore struct {
	rdb      *redis.Client
	now      func() time.Time // the actor's clock: PX is computed from it
	capacity int
	policy   Policy
	entries  int
	counters Counters
	cursor   int64 // PurgeExpired's next window

	downErr   error     // the last failure, answered until downUntil
	downUntil time.Time // by now()
}

func newRedisStore(rdb *redis.Client, capacity int, p Policy, now func() time.Time) *redisStore {
	return &redisStore{rdb: rdb, now: now, capacity: max(capacity, 0), policy: p}
}

var _ backend = (*redisStore)(nil)

// Redis payload: version byte, expiry (unix ns, 0 = none), value. The
// expiry travels with the value so that Get returns it without a PTTL, and
// in the actor's clock, which tests set.
const (
	redisVersion   = 1
	redisHeaderLen = 1 + 8
)

func encodeRedis(value []byte, exp time.Time) []byte {
	b := make([]byte, redisHeaderLen, redisHeaderLen+len(value))
	b[0] = redisVersion
	if !exp.IsZero() {
		binary.BigEndian.PutUint64(b[1:], uint64(exp.UnixNano()))
	}
	return append(b, value...)
}

func decodeRedis(b []byte) (value []byte, exp time.Time, ok bool) {
	if len(b) < redisHeaderLen || b[0] != redisVersion {
		return nil, time.Time{}, false
	}
	if ns := int64(binary.BigEndian.Uint64(b[1:])); ns != 0 {
		exp = time.Unix(0, ns)
	}
	return b[redisHeaderLen:], exp, true
}

// call runs f with a per-call deadline, unless a recent failure says Redis
// is down; a failure is remembered for retryAfter.
func (r *redisStore) call(f func(ctx context.Context) error) error {
	if r.downErr != nil && r.now().Before(r.downUntil) {
		return r.downErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", callTimeout, err)
		}
		r.downErr, r.downUntil = fmt.Errorf("l3 redis: %w", err), r.now().Add(retryAfter)
		return r.downErr
	}
	r.downErr = nil
	return nil
}

// run runs script, one round trip under call, and checks its reply: n
// values, the first the index size, which it keeps as the entry count.
func (r *redisStore) run(script *redis.Script, keys []string, n int, args ...any) ([]any, error) {
	var arr []any
	err := r.call(func(ctx context.Context) error {
		v, err := script.Run(ctx, r.rdb, keys, args...).Result()
		if err != nil {
			return err
		}
		var ok bool
		if arr, ok = v.([]any); !ok || len(arr) != n {
			return fmt.Errorf("unexpected script reply %v", v)
		}
		if _, ok = arr[0].(int64); !ok {
			return fmt.Errorf("unexpected script reply %v", v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.entries = int(arr[0].(int64))
	return arr, nil
}

// names is a script's list of members.
func names(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, m := range list {
		if s, ok := m.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// evicted counts a script's evicted members and returns them as key-only
// entries (an evicted L3 entry's value is gone, as DiskStore's are).
func (r *redisStore) evicted(v any) []Entry {
	keys := names(v)
	out := make([]Entry, len(keys))
	for i, k := range keys {
		out[i] = Entry{Key: k}
	}
	r.counters.Evictions += uint64(len(out))
	return out
}

func (r *redisStore) Get(now time.Time, key string) (Entry, bool, error) {
	bump := "1"
	if r.policy == FIFO {
		bump = "0"
	}
	arr, err := r.run(getScript, []string{redisIdx, redisSeq, redisValueKey(key)}, 3, key, bump)
	if err != nil {
		return Entry{}, false, err
	}
	status, _ := arr[1].(int64)
	raw, _ := arr[2].(string)
	value, exp, ok := decodeRedis([]byte(raw))
	switch {
	case status == 2:
		r.counters.Expired++ // Redis expired it; its member is gone now
	case status != 1 || !ok:
	case (Entry{ExpiresAt: exp}).Expired(now):
		// Past its expiry by this node's clock, not yet by Redis's: a miss,
		// and Redis removes it shortly.
		r.counters.Expired++
	default:
		r.counters.Hits++
		return Entry{Key: key, Value: value, ExpiresAt: exp}, true, nil
	}
	r.counters.Misses++
	return Entry{}, false, nil
}

func (r *redisStore) PutUntil(key string, value []byte, exp time.Time) ([]Entry, error) {
	var ttl int64 // ms; Redis rounds nothing up, so neither a live entry nor PX 0
	if !exp.IsZero() {
		ttl = max(int64((exp.Sub(r.now())+time.Millisecond-1)/time.Millisecond), 1)
	}
	nx := ""
	if r.policy == FIFO {
		nx = "nx"
	}
	arr, err := r.run(putScript, []string{redisIdx, redisSeq, redisValueKey(key)}, 2,
		key, encodeRedis(value, exp), ttl, r.capacity, redisPrefix, nx)
	if err != nil {
		return nil, err
	}
	return r.evicted(arr[1]), nil
}

// Delete removes key's value and index member in one MULTI/EXEC.
func (r *redisStore) Delete(key string) (bool, error) {
	var del *redis.IntCmd
	var card *redis.IntCmd
	err := r.call(func(ctx context.Context) error {
		_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			del = p.Del(ctx, redisValueKey(key))
			p.ZRem(ctx, redisIdx, key)
			card = p.ZCard(ctx, redisIdx)
			return nil
		})
		return err
	})
	if err != nil {
		return false, err
	}
	r.entries = int(card.Val())
	return del.Val() > 0, nil
}

func (r *redisStore) Resize(capacity int) ([]Entry, error) {
	r.capacity = max(capacity, 0)
	arr, err := r.run(resizeScript, []string{redisIdx}, 2, r.capacity, redisPrefix)
	if err != nil {
		return nil, err
	}
	return r.evicted(arr[1]), nil
}

// SetPolicy changes how later reads and writes move entries; the order
// already in the index stays (it is shared, and rebuilt by use).
func (r *redisStore) SetPolicy(p Policy) { r.policy = p }

// PurgeExpired drops index members whose value Redis has expired, checking
// at most purgeBatch of them per call and going round the index over
// successive calls. The values themselves Redis expires on its own.
func (r *redisStore) PurgeExpired(time.Time) ([]string, error) {
	arr, err := r.run(purgeScript, []string{redisIdx}, 2, r.cursor, purgeBatch, redisPrefix)
	if err != nil {
		return nil, err
	}
	keys := names(arr[1])
	r.cursor += int64(purgeBatch - len(keys)) // the removed ones shifted the rest down
	if r.cursor >= int64(r.entries) {
		r.cursor = 0
	}
	r.counters.Expired += uint64(len(keys))
	return keys, nil
}

// refresh reads the index size: on open, to report the entries other
// nodes (or an earlier run) left, and whether Redis answers.
func (r *redisStore) refresh() error {
	var n int64
	err := r.call(func(ctx context.Context) (err error) {
		n, err = r.rdb.ZCard(ctx, redisIdx).Result()
		return err
	})
	if err == nil {
		r.entries = int(n)
	}
	return err
}

// Close leaves the client open: it is the runtime's, shared with the
// cluster's other users.
func (r *redisStore) Close() error { return nil }

// holds reports whether Redis has key's value; a failure reads as no.
func (r *redisStore) holds(now time.Time, key string) bool {
	var n int64
	err := r.call(func(ctx context.Context) (err error) {
		n, err = r.rdb.Exists(ctx, redisValueKey(key)).Result()
		return err
	})
	return err == nil && n > 0
}

func (r *redisStore) stats() (int, int, Counters) { return r.entries, r.capacity, r.counters }

// errNoRedis is cache/l3's open error with cache.l3_backend = "redis" and
// no client: validation requires cluster.redis_url, so only a wiring
// mistake gets here.
var errNoRedis = errors.New(`cache.l3_backend "redis" needs cluster.redis_url (DEER_REDIS_URL)`)
