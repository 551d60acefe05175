package deer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/sim"
)

// A second runtime on a cache.l3_path another one holds (a second deerd on
// the machine) starts at once, warns naming the key, serves with L1 and
// L2, shows cache/l3 degraded (not the gateway unhealthy), takes live
// configuration changes in time, and opens L3 at the next cleanup tick
// once the first one has let go.
func TestSecondRuntimeOnAHeldL3PathServesWithoutL3(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	dir := t.TempDir()
	cfg := func() *conf.Config {
		c := cacheConfig(t, url)
		c.Cache.L3Path = dir
		return c
	}
	first, err := deer.Start(context.Background(), cfg(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	stopFirst := func() {
		if err := first.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	defer stopFirst()

	var logs actortest.SyncBuffer
	clk := clock.NewFake(t0)
	second := start(t, cfg(), deer.WithClock(clk), deer.WithLogger(zerolog.New(&logs), nil))

	h := second.Health(context.Background())
	l3 := h.Actors["cache/l3"]
	if h.Status != "degraded" || l3.State != "degraded" || !strings.Contains(l3.Detail, "cache.l3_path") ||
		!strings.Contains(l3.Detail, "DEER_L3_PATH") || h.AdvancedComponents["memory_manager"] != "active" {
		t.Fatalf("health %s, cache/l3 %+v, memory_manager %s", h.Status, l3, h.AdvancedComponents["memory_manager"])
	}
	if n := logs.Count(`"level":"warn"`); n != 1 || logs.Count("l3 store unavailable") != 1 || logs.Count(dir) == 0 {
		t.Errorf("want one warning naming %s:\n%s", dir, logs.String())
	}
	mustSubmit(t, second, chatTask("0", "hello"))
	waitEntries(t, second, 1, 0, 0)
	if res := mustSubmit(t, second, chatTask("0", "hello")); res.Cache != "hit-l1" {
		t.Errorf("repeat on the second runtime: cache %q, want hit-l1", res.Cache)
	}
	if n := chatCalls(s); n != 1 {
		t.Errorf("%d upstream calls, want 1", n)
	}
	// A change retries L3, which does not wait for the lock (a second of
	// it would make cache/l3 late, and POST /config with it).
	began := time.Now()
	if _, err := second.UpdateConfig(context.Background(), []byte(`{"batch_processing":{"batch_size":12}}`)); err != nil {
		t.Errorf("POST /config on the second runtime: %v", err)
	}
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("POST /config took %v: the L3 retry waited for the lock", took)
	}
	var out strings.Builder
	second.MetricsSet().WritePrometheus(&out)
	if !strings.Contains(out.String(), "deer_cache_l3_available 0") {
		t.Errorf("deer_cache_l3_available is not 0:\n%s", grepLines(out.String(), "l3_available"))
	}

	stopFirst()
	stopFirst = func() {}
	clk.Advance(conf.Seconds(second.Config().Cache.CleanupInterval))
	actortest.Eventually(t, "cache/l3 to open after the first runtime let go", func() bool {
		return second.Health(context.Background()).Actors["cache/l3"].State == "healthy"
	})
	mustSubmit(t, second, chatTask("0", "world"))
	waitEntries(t, second, -1, -1, 1)
}
