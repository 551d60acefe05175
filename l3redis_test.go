package deer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/redistest"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

// redisL3Config is cacheConfig with L3 in the cluster's Redis at srv; each
// call gets its own (unused) cache.l3_path.
func redisL3Config(t *testing.T, url string, srv *redistest.Server) *conf.Config {
	cfg := cacheConfig(t, url)
	cfg.Cluster.RedisURL = srv.URL()
	cfg.Cache.L3Backend = "redis"
	return cfg
}

// With cache.l3_backend = "redis", an answer runtime A stored is a hit in
// L3 on runtime B, which never called the upstream for it; L1 and L2 stay
// each runtime's own.
func TestRedisL3IsSharedBetweenRuntimes(t *testing.T) {
	srv := redistest.Start(t)
	s, url := simServer(t, sim.DefaultKnobs())
	var logs actortest.SyncBuffer
	a := start(t, redisL3Config(t, url, srv), deer.WithLogger(zerolog.New(&logs), nil))
	b := start(t, redisL3Config(t, url, srv))
	if logs.Count("cache.l3_path is unused") != 1 {
		t.Errorf("A did not say once that cache.l3_path is unused:\n%s", logs.String())
	}

	if res := mustSubmit(t, a, chatTask("0", "shared")); res.Cache != messages.CacheMiss {
		t.Fatalf("first call on A: cache %q, want miss", res.Cache)
	}
	waitEntries(t, a, 1, 0, 1) // A's write-through reached Redis
	if n := srv.Client().Exists(context.Background(), "deer:l3:idx").Val(); n != 1 {
		t.Fatal("no deer:l3:idx in Redis after A's write")
	}
	res := mustSubmit(t, b, chatTask("0", "shared"))
	if res.Cache != messages.CacheHitL3 {
		t.Fatalf("same call on B: cache %q, want hit-l3", res.Cache)
	}
	if n := chatCalls(s); n != 1 {
		t.Errorf("upstream saw %d chat calls, want 1 (B answered from Redis)", n)
	}
	if cs := cacheStats(b); cs.L3Hits != 1 || cs.L1Entries != 1 {
		t.Errorf("B's cache_stats after the L3 hit: %+v", cs)
	}
	// B promoted the entry into its own L1: the next repeat stays local.
	if res := mustSubmit(t, b, chatTask("0", "shared")); res.Cache != messages.CacheHitL1 {
		t.Errorf("repeat on B: cache %q, want hit-l1", res.Cache)
	}
	for name, rt := range map[string]*deer.Runtime{"A": a, "B": b} {
		if st := rt.Health(context.Background()).Actors["cache/l3"]; st.State != "healthy" {
			t.Errorf("%s: cache/l3 %+v", name, st)
		}
	}
}

// A runtime whose Redis is gone still answers (L3 misses at once), keeps
// serving repeats from L1, and shows cache/l3 degraded.
func TestRedisL3DownServesFromL1AndL2AndShowsDegraded(t *testing.T) {
	srv := redistest.Start(t)
	s, url := simServer(t, sim.DefaultKnobs())
	rt := start(t, redisL3Config(t, url, srv))
	srv.Kill()

	if res := mustSubmit(t, rt, chatTask("0", "no redis")); res.Cache != messages.CacheMiss {
		t.Fatalf("call without Redis: cache %q, want miss", res.Cache)
	}
	waitEntries(t, rt, 1, 0, -1)
	if res := mustSubmit(t, rt, chatTask("0", "no redis")); res.Cache != messages.CacheHitL1 {
		t.Errorf("repeat without Redis: cache %q, want hit-l1", res.Cache)
	}
	if n := chatCalls(s); n != 1 {
		t.Errorf("upstream saw %d chat calls, want 1", n)
	}
	h := rt.Health(context.Background())
	if l3 := h.Actors["cache/l3"]; l3.State != "degraded" || !strings.Contains(l3.Detail, "l3 redis") {
		t.Errorf("cache/l3 without Redis: %+v", l3)
	}
	if h.Status == "unhealthy" {
		t.Errorf("health %s without Redis, want degraded at worst", h.Status)
	}
	var out strings.Builder
	rt.MetricsSet().WritePrometheus(&out)
	if !strings.Contains(out.String(), "deer_cache_l3_available 0") {
		t.Errorf("deer_cache_l3_available is not 0:\n%s", grepLines(out.String(), "l3_available"))
	}
}
