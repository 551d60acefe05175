package limiter

import (
	"testing"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// shipped is conf/deer.toml, the configuration `make run` uses.
func shipped(t *testing.T) *conf.Config {
	t.Helper()
	cfg, err := conf.Load(conf.LoadOptions{ConfigPath: "../../conf/deer.toml", Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestShippedSimIsNotThrottled: with conf/deer.toml, 500 calls to the
// built-in simulator get their tokens at once — the clock never moves, so
// none of them can have waited — as workers take them: from the reservoir
// when it has one, else by AcquireToken. The openai upstream of the same
// file keeps the cautious defaults: 20 at once, the rest wait.
func TestShippedSimIsNotThrottled(t *testing.T) {
	const calls = 500
	cfg := shipped(t)

	r := &Reservoir{}
	sim := startFor(t, cfg, "sim", r)
	var taken int
	for id := uint64(1); id <= calls; id++ {
		if r.TryTake() {
			taken++
			continue
		}
		sim.acquire(id, 1)
	}
	granted := len(sim.granted(t))
	if st := sim.stats(t); taken+granted != calls || st.Waiting != 0 {
		t.Fatalf("sim: %d tokens from the reservoir + %d granted, %d waiting; want all %d at once (stats %+v)",
			taken, granted, st.Waiting, calls, st)
	}

	openai := startFor(t, cfg, "openai", nil)
	for id := uint64(1); id <= calls; id++ {
		openai.acquire(id, 1)
	}
	burst := conf.Default().RateLimit.BurstAllowance
	if got, st := len(openai.granted(t)), openai.stats(t); got != burst || st.Waiting != calls-burst || st.CurrentRate != conf.Default().RateLimit.InitialRate {
		t.Fatalf("openai: %d granted at once, stats %+v; want the default burst %d and rate", got, st, burst)
	}
}

// TestUpstreamOverrideLive: an upstream's rate_limit keys replace the
// top-level ones for its limiter, the keys it does not set follow the
// top-level ones, and both apply live through POST /config's Patch.
func TestUpstreamOverrideLive(t *testing.T) {
	cfg := conf.Default()
	u := conf.NewUpstream("http://127.0.0.1:9")
	cfg.Upstreams["sim"] = u
	cfg, err := cfg.Patch([]byte(`{"upstreams": {"sim": {"rate_limit": {"max_rate": 400, "burst_allowance": 50}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	f := start(t, cfg)
	want := func(st *messages.LimiterStats, minRate, maxRate float64, burst int) {
		t.Helper()
		if st.MinRate != minRate || st.MaxRate != maxRate || st.Burst != burst {
			t.Fatalf("stats %+v; want min %v, max %v, burst %d", st, minRate, maxRate, burst)
		}
	}
	want(f.stats(t), 1, 400, 50)

	for _, step := range []struct {
		patch            string
		minRate, maxRate float64
		burst            int
	}{
		// A top-level key the upstream does not set reaches it ...
		{`{"rate_limit": {"min_rate": 2}}`, 2, 400, 50},
		// ... one it sets does not.
		{`{"rate_limit": {"max_rate": 300, "burst_allowance": 30}}`, 2, 400, 50},
		{`{"upstreams": {"sim": {"rate_limit": {"max_rate": 600}}}}`, 2, 600, 50},
		// null removes the override: the top-level value applies again.
		{`{"upstreams": {"sim": {"rate_limit": {"burst_allowance": null}}}}`, 2, 600, 30},
	} {
		next, err := f.live.Load().Patch([]byte(step.patch))
		if err != nil {
			t.Fatalf("%s: %v", step.patch, err)
		}
		f.apply(t, next)
		want(f.stats(t), step.minRate, step.maxRate, step.burst)
	}
}
