package cache

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/redistest"
	"github.com/deer-runtime/deer/messages"
)

func newRedis(t *testing.T, srv *redistest.Server, capacity int, p Policy, clk *clock.Fake) *redisStore {
	t.Helper()
	return newRedisStore(srv.Dial(), capacity, p, clk.Now)
}

func rput(t *testing.T, r *redisStore, key string, exp time.Time) []string {
	t.Helper()
	evicted, err := r.PutUntil(key, []byte("value of "+key), exp)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	var keys []string
	for _, e := range evicted {
		keys = append(keys, e.Key)
	}
	return keys
}

func rget(t *testing.T, r *redisStore, now time.Time, key string) (Entry, bool) {
	t.Helper()
	e, ok, err := r.Get(now, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if ok && string(e.Value) != "value of "+key {
		t.Fatalf("get %s = %q", key, e.Value)
	}
	return e, ok
}

// members lists the index, oldest first.
func indexOf(t *testing.T, srv *redistest.Server) []string {
	t.Helper()
	m, err := srv.Client().ZRange(context.Background(), redisIdx, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The entry comes back with its expiry, Redis holds the TTL, and an entry
// past its expiry by the node's clock misses even before Redis drops it.
func TestRedisStorePutGetKeepsTheTTLInRedis(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	r := newRedis(t, srv, 10, LRU, clk)
	exp := t0.Add(time.Hour)
	rput(t, r, "a", exp)
	rput(t, r, "forever", time.Time{})

	e, ok := rget(t, r, t0, "a")
	if !ok || !e.ExpiresAt.Equal(exp) {
		t.Fatalf("a = %+v, %v; want expiry %v", e, ok, exp)
	}
	if e, ok := rget(t, r, t0, "forever"); !ok || !e.ExpiresAt.IsZero() {
		t.Fatalf("forever = %+v, %v", e, ok)
	}
	ctx := context.Background()
	if ttl := srv.Client().PTTL(ctx, "deer:l3:v:a").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL deer:l3:v:a = %v, want about an hour", ttl)
	}
	if ttl := srv.Client().PTTL(ctx, "deer:l3:v:forever").Val(); ttl != -1 {
		t.Errorf("PTTL deer:l3:v:forever = %v, want none (-1)", ttl)
	}
	if _, ok := rget(t, r, t0.Add(time.Hour), "a"); ok {
		t.Error("a served at its expiry")
	}
	if _, ok := rget(t, r, t0, "absent"); ok {
		t.Error("absent found")
	}
	if n, c, got := r.stats(); n != 2 || c != 10 || got != (Counters{Hits: 2, Misses: 2, Expired: 1}) {
		t.Errorf("stats = %d entries of %d, %+v", n, c, got)
	}
	if !r.holds(t0, "forever") || r.holds(t0, "absent") {
		t.Error("holds disagrees with Redis")
	}
}

// Redis expires the value itself; the next read misses, counts it expired
// and takes its member out of the index.
func TestRedisStoreRedisExpiresEntries(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	r := newRedis(t, srv, 10, LRU, clk)
	rput(t, r, "short", t0.Add(20*time.Millisecond))
	rput(t, r, "long", t0.Add(time.Hour))
	actortest.Eventually(t, "Redis to expire deer:l3:v:short", func() bool {
		return srv.Client().Exists(context.Background(), "deer:l3:v:short").Val() == 0
	})
	// By the node's (fake) clock it is still live: only Redis expired it.
	if _, ok := rget(t, r, t0, "short"); ok {
		t.Fatal("short served after Redis expired it")
	}
	if got := indexOf(t, srv); !slices.Equal(got, []string{"long"}) {
		t.Errorf("index = %v, want [long]", got)
	}
	if n, _, c := r.stats(); n != 1 || c.Expired != 1 || c.Misses != 1 {
		t.Errorf("stats = %d entries, %+v", n, c)
	}
}

// PurgeExpired takes out of the index the members whose value Redis
// expired, without a read of each.
func TestRedisStorePurgeExpired(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	r := newRedis(t, srv, 10, LRU, clk)
	for _, k := range []string{"x", "y"} {
		rput(t, r, k, t0.Add(10*time.Millisecond))
	}
	rput(t, r, "z", t0.Add(time.Hour))
	actortest.Eventually(t, "Redis to expire x and y", func() bool {
		return srv.Client().Exists(context.Background(), "deer:l3:v:x", "deer:l3:v:y").Val() == 0
	})
	keys, err := r.PurgeExpired(t0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(keys); !slices.Equal(keys, []string{"x", "y"}) {
		t.Errorf("purged %v, want [x y]", keys)
	}
	if got := indexOf(t, srv); !slices.Equal(got, []string{"z"}) {
		t.Errorf("index = %v, want [z]", got)
	}
	if n, _, c := r.stats(); n != 1 || c.Expired != 2 {
		t.Errorf("stats = %d entries, %+v", n, c)
	}
}

// cache.l3_size bounds the index: a put beyond it evicts the least
// recently used (lru) or the first written (fifo), value included.
func TestRedisStoreCapacityTrimsTheOldest(t *testing.T) {
	for _, tc := range []struct {
		policy Policy
		victim string
	}{
		{LRU, "b"},  // a was read after b was written
		{FIFO, "a"}, // reads and rewrites keep a first
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			srv := redistest.Start(t)
			clk := clock.NewFake(t0)
			r := newRedis(t, srv, 3, tc.policy, clk)
			exp := t0.Add(time.Hour)
			for _, k := range []string{"a", "b", "c"} {
				rput(t, r, k, exp)
			}
			rget(t, r, t0, "a")
			rput(t, r, "a", exp)
			if ev := rput(t, r, "d", exp); !slices.Equal(ev, []string{tc.victim}) {
				t.Fatalf("evicted %v, want [%s]", ev, tc.victim)
			}
			if _, ok := rget(t, r, t0, tc.victim); ok {
				t.Errorf("%s served after its eviction", tc.victim)
			}
			if srv.Client().Exists(context.Background(), redisValueKey(tc.victim)).Val() != 0 {
				t.Errorf("%s's value left in Redis", tc.victim)
			}
			if n, _, c := r.stats(); n != 3 || c.Evictions != 1 {
				t.Errorf("stats = %d entries, %+v", n, c)
			}
		})
	}
}

func TestRedisStoreDeleteAndResize(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	r := newRedis(t, srv, 5, LRU, clk)
	for _, k := range []string{"a", "b", "c", "d"} {
		rput(t, r, k, t0.Add(time.Hour))
	}
	if ok, err := r.Delete("b"); !ok || err != nil {
		t.Fatalf("delete b = %v, %v", ok, err)
	}
	if ok, err := r.Delete("b"); ok || err != nil {
		t.Fatalf("second delete b = %v, %v", ok, err)
	}
	evicted, err := r.Resize(1)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range evicted {
		keys = append(keys, e.Key)
	}
	if !slices.Equal(keys, []string{"a", "c"}) {
		t.Fatalf("Resize(1) evicted %v, want [a c]", keys)
	}
	if got := indexOf(t, srv); !slices.Equal(got, []string{"d"}) {
		t.Errorf("index = %v, want [d]", got)
	}
	if n := srv.Client().Exists(context.Background(), "deer:l3:v:a", "deer:l3:v:b", "deer:l3:v:c").Val(); n != 0 {
		t.Errorf("%d deleted or evicted values left in Redis", n)
	}
	if n, c, _ := r.stats(); n != 1 || c != 1 {
		t.Errorf("stats = %d entries of %d", n, c)
	}
	// Capacity 0 holds nothing: a put evicts what it adds.
	if _, err := r.Resize(0); err != nil {
		t.Fatal(err)
	}
	if ev := rput(t, r, "e", time.Time{}); !slices.Equal(ev, []string{"e"}) {
		t.Errorf("put at capacity 0 evicted %v, want [e]", ev)
	}
}

// Two nodes' stores on one Redis: what one writes, the other reads.
func TestRedisStoreIsSharedBetweenNodes(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	a, b := newRedis(t, srv, 10, LRU, clk), newRedis(t, srv, 10, LRU, clk)
	rput(t, a, "k", t0.Add(time.Minute))
	if e, ok := rget(t, b, t0, "k"); !ok || !e.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("node b: %+v, %v", e, ok)
	}
	if n, _, _ := b.stats(); n != 1 {
		t.Errorf("node b counts %d entries, want 1", n)
	}
}

// With Redis gone every operation fails fast with an error, and keeps
// failing without calling Redis for retryAfter; once Redis is back and
// that has passed, the store works again (empty: no persistence).
func TestRedisStoreFailsFastWithoutRedisAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	r := newRedis(t, srv, 10, LRU, clk)
	rput(t, r, "k", t0.Add(time.Hour))
	srv.Kill()

	began := time.Now()
	if _, _, err := r.Get(t0, "k"); err == nil || !strings.Contains(err.Error(), "l3 redis") {
		t.Fatalf("get with Redis killed: %v", err)
	}
	if _, err := r.PutUntil("k2", []byte("v"), time.Time{}); err == nil {
		t.Fatal("put with Redis killed succeeded")
	}
	if _, err := r.Delete("k"); err == nil {
		t.Fatal("delete with Redis killed succeeded")
	}
	if _, err := r.PurgeExpired(t0); err == nil {
		t.Fatal("purge with Redis killed succeeded")
	}
	if r.holds(t0, "k") {
		t.Fatal("holds with Redis killed")
	}
	if took := time.Since(began); took > 2*callTimeout {
		t.Errorf("five calls without Redis took %v", took)
	}

	srv.Restart()
	if _, _, err := r.Get(t0, "k"); err == nil {
		t.Fatal("within retryAfter of the failure, Redis was called again")
	}
	clk.Advance(retryAfter)
	rput(t, r, "k", t0.Add(time.Hour))
	if _, ok := rget(t, r, clk.Now(), "k"); !ok {
		t.Fatal("get after recovery missed")
	}
}

// The actor on a Redis store: shared entries, degraded while Redis is
// down (lookups miss, puts fail, nothing hangs), healthy again after.
func TestActorL3OnRedisDegradesAndHeals(t *testing.T) {
	srv := redistest.Start(t)
	h := newHarness(t, func(c *conf.Config) {
		c.Cluster.RedisURL = srv.URL()
		c.Cache.L3Backend = "redis"
	})
	l3 := h.spawnDeps(Deps{Tier: messages.TierL3, Redis: srv.Dial()})
	available := func() float64 {
		return h.metrics.GetOrCreateGauge("deer_cache_l3_available", nil).Get()
	}
	if r := h.put(l3, "k", "v", 60); !r.Stored {
		t.Fatalf("put = %+v", r)
	}
	if r := h.get(l3, "k"); !r.Found || string(r.Value) != "v" || !r.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("get = %+v", r)
	}
	if st := h.stats(l3); st.Entries != 1 || st.Capacity != 10000 || st.Hits != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if v := srv.Client().Get(context.Background(), "deer:l3:v:k").Val(); !strings.HasSuffix(v, "v") {
		t.Fatalf("deer:l3:v:k = %q", v)
	}
	if available() != 1 {
		t.Fatal("deer_cache_l3_available is not 1")
	}

	srv.Kill()
	if r := h.get(l3, "k"); r.Found {
		t.Fatal("found with Redis killed")
	}
	st := ask[*messages.StatusReport](h, l3, &messages.StatusQuery{})
	if st.State != messages.StateDegraded || !strings.Contains(st.Detail, "l3 redis") {
		t.Fatalf("status with Redis killed = %+v", st)
	}
	if r := h.put(l3, "k", "v", 60); r.Stored || r.Err == "" {
		t.Fatalf("put with Redis killed = %+v", r)
	}
	if available() != 0 {
		t.Fatal("deer_cache_l3_available is not 0 with Redis killed")
	}

	srv.Restart()
	h.clock.Advance(retryAfter)
	if r := h.put(l3, "k", "v2", 60); !r.Stored {
		t.Fatalf("put after Restart = %+v", r)
	}
	if r := h.get(l3, "k"); !r.Found || string(r.Value) != "v2" {
		t.Fatalf("get after Restart = %+v", r)
	}
	if st := ask[*messages.StatusReport](h, l3, &messages.StatusQuery{}); st.State != messages.StateHealthy {
		t.Fatalf("status after Restart = %+v", st)
	}
	if available() != 1 {
		t.Fatal("deer_cache_l3_available is not 1 after Restart")
	}
}
