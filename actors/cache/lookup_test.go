package cache

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// spawnDeps spawns a tier from d, filling in the harness's clock,
// configuration, logger and metrics.
func (h *harness) spawnDeps(d Deps, opts ...actor.PropsOption) *actor.PID {
	h.t.Helper()
	d.Live, d.Clock, d.Log, d.Metrics = h.live, h.clock, zerolog.Nop(), h.metrics
	pid := h.sys.Root.Spawn(Props(d).Configure(opts...))
	h.t.Cleanup(func() { h.stop(pid) })
	return pid
}

// chain is the three tiers wired as in the runtime (tree.go), with the
// router's side played by the test: Front lookups, CacheLookup to L2 with a
// probe as ReplyTo, write-through puts.
type chain struct {
	*harness
	front          *Front
	l1, l2, l3     atomic.Pointer[actor.PID] // read by the tiers' Next and Top
	probe          *actor.PID
	answers        chan any
	ref            uint64
	l2Opts, l3Opts []actor.PropsOption
}

func newChain(t *testing.T, mutate func(*conf.Config)) *chain {
	t.Helper()
	c := &chain{harness: newHarness(t, mutate), front: NewFront()}
	c.probe, c.answers = actortest.Probe(t, c.sys)
	c.spawnL3()
	c.l2.Store(c.spawnDeps(Deps{Tier: messages.TierL2, Next: c.l3.Load, Top: c.l1.Load}))
	c.l1.Store(c.spawnDeps(Deps{Tier: messages.TierL1, Front: c.front, Next: c.l2.Load}))
	c.ask(c.l1.Load(), &messages.Ping{}) // L1 has started: the front is enabled
	return c
}

func (c *chain) spawnL3() {
	c.l3.Store(c.spawnDeps(Deps{Tier: messages.TierL3, Top: c.l1.Load}))
}

func (c *chain) ask(pid *actor.PID, msg any) any {
	c.t.Helper()
	return ask[any](c.harness, pid, msg)
}

// lookup plays the router after an L1 miss: one CacheLookup to L2, one
// answer back.
func (c *chain) lookup(key string) *messages.CacheLookedUp {
	c.t.Helper()
	c.ref++
	c.sys.Root.Send(c.l2.Load(), &messages.CacheLookup{Ref: c.ref, Key: key, ReplyTo: c.probe})
	r := actortest.Recv[*messages.CacheLookedUp](c.t, c.answers)
	if r.Ref != c.ref || r.Key != key {
		c.t.Fatalf("answer %+v to lookup %d of %q", r, c.ref, key)
	}
	if extra := actortest.Drain(c.t, c.sys, c.probe, c.answers); len(extra) != 0 {
		c.t.Fatalf("more than one answer: %+v", extra)
	}
	return r
}

// writeThrough plays the router after a 2xx answer.
func (c *chain) writeThrough(key, value string, ttl float64) {
	c.t.Helper()
	for _, pid := range []*actor.PID{c.l1.Load(), c.l3.Load()} {
		if r := c.put(pid, key, value, ttl); !r.Stored {
			c.t.Fatalf("write-through to %s: %+v", r.Tier, r)
		}
	}
}

// frontHas checks what the router finds in L1 at now.
func (c *chain) frontHas(key, value string, expiresAt time.Time) {
	c.t.Helper()
	v, exp, ok := c.front.Lookup(c.clock.Now(), key)
	if !ok || string(v) != value || !exp.Equal(expiresAt) {
		c.t.Fatalf("front lookup of %q = %q, expires %v, %v; want %q until %v", key, v, exp, ok, value, expiresAt)
	}
}

func (c *chain) frontMisses(key string) {
	c.t.Helper()
	if v, _, ok := c.front.Lookup(c.clock.Now(), key); ok {
		c.t.Fatalf("front lookup of %q hit %q", key, v)
	}
}

// settled returns once L1 has processed what was sent to it so far (a
// promotion is sent before the lookup's answer).
func (c *chain) settled() { c.ask(c.l1.Load(), &messages.Ping{}) }

func TestFrontServesWhatL1Stores(t *testing.T) {
	c := newChain(t, func(cfg *conf.Config) { cfg.Cache.DefaultTTL = 60 })
	c.frontMisses("k")
	c.put(c.l1.Load(), "k", "v", 0)
	c.frontHas("k", "v", t0.Add(time.Minute))

	// The router's lookups count as L1's, in the stats and the Prometheus
	// counters at once (no L1 message needed to sync them).
	if h, m := c.counter("deer_cache_hits_total", "l1"), c.counter("deer_cache_misses_total", "l1"); h != 1 || m != 1 {
		t.Fatalf("l1 metrics: hits %d misses %d, want 1 and 1", h, m)
	}
	c.clock.Advance(time.Minute) // TTL holds in the front
	c.frontMisses("k")
	st := c.stats(c.l1.Load())
	if st.Hits != 1 || st.Misses != 2 || st.Expired != 1 || st.Entries != 0 {
		t.Fatalf("l1 stats = %+v", st)
	}
	if h, m := c.counter("deer_cache_hits_total", "l1"), c.counter("deer_cache_misses_total", "l1"); h != 1 || m != 2 {
		t.Fatalf("l1 metrics after the stats query: hits %d misses %d (counted twice?)", h, m)
	}

	// Disabled: the front misses without counting, and keeps its entries.
	c.put(c.l1.Load(), "k", "v2", 0)
	c.apply(func(cfg *conf.Config) { cfg.EnableAdvancedOptimization = false }, c.l1.Load())
	c.frontMisses("k")
	if st := c.stats(c.l1.Load()); st.Misses != 2 || st.Entries != 1 {
		t.Fatalf("disabled l1 stats = %+v", st)
	}
	c.apply(func(cfg *conf.Config) { cfg.EnableAdvancedOptimization = true }, c.l1.Load())
	c.frontHas("k", "v2", t0.Add(2*time.Minute))

	// Resizing L1 resizes the front, and demotes what it pushes out.
	c.put(c.l1.Load(), "k2", "v", 0)
	c.apply(func(cfg *conf.Config) { cfg.Cache.L1Size = 1 }, c.l1.Load())
	c.frontMisses("k") // k was looked up before k2 was put: the LRU victim
	// L1 sends the demotion to L2 while it answers the resize: the test's
	// own question to L2 may overtake it.
	actortest.Eventually(t, "the demoted entry in l2", func() bool {
		r := c.get(c.l2.Load(), "k")
		return r.Found && string(r.Value) == "v2"
	})
}

// L1's entries live in the front: a crashed and restarted cache/l1 keeps
// them, and its counters go on without repeating.
func TestFrontSurvivesL1Restart(t *testing.T) {
	h := newHarness(t, func(cfg *conf.Config) { cfg.Cache.L1Size = 3 })
	front := NewFront()
	l1 := h.spawnDeps(Deps{Tier: messages.TierL1, Front: front}, actor.WithReceiverMiddleware(crashOn))
	h.put(l1, "a", "va", 0)
	h.put(l1, "b", "vb", 0)
	if _, _, ok := front.Lookup(h.clock.Now(), "a"); !ok {
		t.Fatal("front missed before the crash")
	}

	// A configuration applied while L1 is down (the bound shrank) applies
	// to the front when L1 starts again: b, the LRU victim, goes.
	cfg := *h.live.Load()
	cfg.Cache.L1Size = 1
	h.live.Store(&cfg)
	h.sys.Root.Send(l1, &crash{})
	if r := h.get(l1, "a"); !r.Found || string(r.Value) != "va" {
		t.Fatalf("after the restart: %+v", r)
	}
	if _, _, ok := front.Lookup(h.clock.Now(), "b"); ok {
		t.Fatal("the restarted l1 did not apply its new bound to the front")
	}
	st := h.stats(l1)
	if st.Entries != 1 || st.Capacity != 1 || st.Hits != 2 || st.Misses != 1 || st.Evictions != 1 {
		t.Fatalf("stats after the restart = %+v", st)
	}
	if hits := h.counter("deer_cache_hits_total", "l1"); hits != 2 {
		t.Fatalf("hits metric = %d, want 2 (one before, one after the restart)", hits)
	}
}

func TestLookupL2HitPromotesIntoL1(t *testing.T) {
	c := newChain(t, nil)
	// L2 holds k as L1 left it, expiring at t0+30s.
	c.sys.Root.Send(c.l2.Load(), &messages.CacheEvicted{Key: "k", Value: []byte("v"), ExpiresAt: t0.Add(30 * time.Second)})
	c.clock.Advance(10 * time.Second)

	c.frontMisses("k")
	r := c.lookup("k")
	if !r.Found || r.Tier != messages.TierL2 || string(r.Value) != "v" || !r.ExpiresAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("lookup = %+v", r)
	}
	c.settled()
	c.frontHas("k", "v", t0.Add(30*time.Second)) // promotion kept the expiry
	if r := c.get(c.l2.Load(), "k"); r.Found {
		t.Fatal("l2 kept its copy after promoting it")
	}
	if st := c.stats(c.l3.Load()); st.Hits+st.Misses != 0 {
		t.Fatalf("an l2 hit reached l3: %+v", st)
	}

	// TTL holds through promotion: the promoted entry expires when the
	// original would have, not 30s after the promotion.
	c.clock.Advance(20 * time.Second)
	c.frontMisses("k")
	if r := c.lookup("k"); r.Found {
		t.Fatalf("found after expiry: %+v", r)
	}
}

func TestLookupL3HitPromotesIntoL1AndL3KeepsIt(t *testing.T) {
	c := newChain(t, nil)
	if r := c.put(c.l3.Load(), "k", "v", 40); !r.Stored {
		t.Fatalf("put to l3: %+v", r)
	}
	c.clock.Advance(15 * time.Second)

	r := c.lookup("k")
	if !r.Found || r.Tier != messages.TierL3 || string(r.Value) != "v" || !r.ExpiresAt.Equal(t0.Add(40*time.Second)) {
		t.Fatalf("lookup = %+v", r)
	}
	c.settled()
	c.frontHas("k", "v", t0.Add(40*time.Second))
	if r := c.get(c.l3.Load(), "k"); !r.Found {
		t.Fatal("l3 dropped its copy on promotion")
	}
	if r := c.get(c.l2.Load(), "k"); r.Found {
		t.Fatal("promotion went into l2")
	}
	st2, st3 := c.stats(c.l2.Load()), c.stats(c.l3.Load())
	if st2.Misses != 2 || st3.Hits != 2 || st3.Misses != 0 {
		t.Fatalf("l2 %+v\nl3 %+v", st2, st3)
	}

	c.clock.Advance(25 * time.Second)
	c.frontMisses("k")
}

func TestLookupMissesEveryTier(t *testing.T) {
	c := newChain(t, nil)
	c.frontMisses("absent")
	r := c.lookup("absent")
	if r.Found || r.Value != nil || r.Tier != "" || !r.ExpiresAt.IsZero() {
		t.Fatalf("lookup = %+v", r)
	}
	c.settled()
	c.frontMisses("absent") // nothing promoted
	want := map[string][2]uint64{"l1": {0, 2}, "l2": {0, 1}, "l3": {0, 1}}
	for tier, pid := range map[string]*actor.PID{"l1": c.l1.Load(), "l2": c.l2.Load(), "l3": c.l3.Load()} {
		if st := c.stats(pid); [2]uint64{st.Hits, st.Misses} != want[tier] {
			t.Errorf("%s hits/misses = %d/%d, want %v", tier, st.Hits, st.Misses, want[tier])
		}
	}
}

func TestLookupEdges(t *testing.T) {
	t.Run("no tier below", func(t *testing.T) {
		h := newHarness(t, nil)
		probe, answers := actortest.Probe(t, h.sys)
		l2 := h.spawnDeps(Deps{Tier: messages.TierL2, Next: func() *actor.PID { return nil }})
		h.sys.Root.Send(l2, &messages.CacheLookup{Ref: 1, Key: "k", ReplyTo: probe})
		if r := actortest.Recv[*messages.CacheLookedUp](t, answers); r.Found || r.Ref != 1 {
			t.Fatalf("lookup = %+v", r)
		}
	})
	t.Run("asked with Request", func(t *testing.T) {
		c := newChain(t, nil)
		c.put(c.l3.Load(), "k", "v", 0)
		r := ask[*messages.CacheLookedUp](c.harness, c.l2.Load(), &messages.CacheLookup{Ref: 9, Key: "k"})
		if !r.Found || r.Tier != messages.TierL3 || r.Ref != 9 {
			t.Fatalf("lookup = %+v", r)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		c := newChain(t, func(cfg *conf.Config) { cfg.EnableAdvancedOptimization = false })
		if r := c.lookup("k"); r.Found {
			t.Fatalf("lookup = %+v", r)
		}
		for _, pid := range []*actor.PID{c.l1.Load(), c.l2.Load(), c.l3.Load()} {
			if st := c.stats(pid); st.Hits+st.Misses != 0 {
				t.Fatalf("a disabled cache counted: %+v", st)
			}
		}
	})
	t.Run("l3 unavailable", func(t *testing.T) {
		c := newChain(t, func(cfg *conf.Config) { cfg.Cache.L3Path = "" }) // OpenDisk refuses it
		if st := ask[*messages.StatusReport](c.harness, c.l3.Load(), &messages.StatusQuery{}); st.State != messages.StateDegraded {
			t.Fatalf("l3 status = %+v", st)
		}
		if r := c.lookup("k"); r.Found {
			t.Fatalf("lookup = %+v", r)
		}
		// The lookup missed every tier; the unavailable L3 counts it.
		if st := c.stats(c.l3.Load()); st.Misses != 1 {
			t.Fatalf("l3 stats = %+v", st)
		}
		if m := c.counter("deer_cache_misses_total", "l3"); m != 1 {
			t.Fatalf("l3 misses metric = %d", m)
		}
	})
}

// L1 and L2 stay exclusive: a promotion into a full L1 demotes L1's victim
// into L2, which has dropped the promoted entry.
func TestPromotionSwapsL1AndL2(t *testing.T) {
	c := newChain(t, func(cfg *conf.Config) { cfg.Cache.L1Size = 1 })
	c.writeThrough("a", "va", 0)
	c.writeThrough("b", "vb", 0) // a: L1 → L2
	if r := c.get(c.l2.Load(), "a"); !r.Found {
		t.Fatal("a not demoted into l2")
	}
	c.frontMisses("a")
	if r := c.lookup("a"); !r.Found || r.Tier != messages.TierL2 {
		t.Fatalf("lookup = %+v", r)
	}
	c.settled() // L1 took a and sent b to L2 before answering this
	c.frontHas("a", "va", t0.Add(time.Hour))
	c.frontMisses("b")
	if r := c.get(c.l2.Load(), "b"); !r.Found || string(r.Value) != "vb" {
		t.Fatalf("l2 get b = %+v", r)
	}
	if r := c.get(c.l2.Load(), "a"); r.Found {
		t.Fatal("a in l1 and l2 at once")
	}
	if st := c.stats(c.l1.Load()); st.Evictions != 2 {
		t.Fatalf("l1 stats = %+v", st)
	}
}

// An answer put into L1 after a lower tier's copy was made is newer: the
// promotion of the older copy does not replace it.
func TestPromotionKeepsNewerL1Entry(t *testing.T) {
	c := newChain(t, nil)
	c.sys.Root.Send(c.l2.Load(), &messages.CacheEvicted{Key: "k", Value: []byte("old"), ExpiresAt: t0.Add(time.Minute)})
	c.put(c.l1.Load(), "k", "new", 0) // a refresh, say, racing the lookup
	if r := c.lookup("k"); !r.Found || string(r.Value) != "old" {
		t.Fatalf("lookup = %+v", r)
	}
	c.settled()
	c.frontHas("k", "new", t0.Add(time.Hour))
}

// L3 is the write-through tier: what was written survives a restart of its
// actor and is then found through the chain.
func TestLookupFindsL3AfterItsRestart(t *testing.T) {
	c := newChain(t, nil)
	c.writeThrough("k", "v", 120)
	c.stop(c.l3.Load())
	c.clock.Advance(time.Minute)
	c.spawnL3() // same cache.l3_path
	c.ask(c.l3.Load(), &messages.Ping{})

	// A key L1 does not hold (L1 lost nothing, so ask for one only L3 has).
	c.sys.Root.Send(c.l1.Load(), &messages.CacheDelete{Key: "k"})
	c.settled()
	c.frontMisses("k")
	r := c.lookup("k")
	if !r.Found || r.Tier != messages.TierL3 || string(r.Value) != "v" || !r.ExpiresAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("lookup after the l3 restart = %+v", r)
	}
	c.settled()
	c.frontHas("k", "v", t0.Add(2*time.Minute))
}

// crashOnFirstLookup makes the actor panic on the first CacheLookup it
// receives, in any incarnation.
func crashOnFirstLookup(deliveries *atomic.Int32) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if _, ok := env.Message.(*messages.CacheLookup); ok && deliveries.Add(1) == 1 {
				panic("injected during a lookup")
			}
			next(c, env)
		}
	}
}

// A crash of cache/l2 while it processes a CacheLookup does not lose the
// answer: the tiers run under a supervisor.Strategy, as in the runtime,
// which restarts L2 after its backoff and redelivers the lookup.
func TestL2CrashDuringLookupIsRedelivered(t *testing.T) {
	h := newHarness(t, nil)
	front := NewFront()
	reg := supervisor.NewRegistry()
	supClock := clock.NewFake(t0) // the supervisor's backoff timers, apart from the tiers'
	strategy := supervisor.NewStrategy(supervisor.DefaultPolicy(), supClock, reg, h.metrics, zerolog.Nop())
	byName := func(name string) func() *actor.PID {
		return func() *actor.PID {
			pid, _ := reg.PID(name)
			return pid
		}
	}
	var deliveries atomic.Int32
	tier := func(d Deps, opts ...actor.PropsOption) supervisor.ChildSpec {
		d.Live, d.Clock, d.Log, d.Metrics = h.live, h.clock, zerolog.Nop(), h.metrics
		return supervisor.ChildSpec{Name: "cache/" + d.Tier, Props: Props(d).Configure(opts...)}
	}
	root, err := supervisor.SpawnRoot(h.sys.Root, "cache", func() []supervisor.ChildSpec {
		return []supervisor.ChildSpec{
			tier(Deps{Tier: messages.TierL1, Front: front, Next: byName("cache/l2")}),
			tier(Deps{Tier: messages.TierL2, Next: byName("cache/l3"), Top: byName("cache/l1")},
				actor.WithReceiverMiddleware(crashOnFirstLookup(&deliveries))),
			tier(Deps{Tier: messages.TierL3, Top: byName("cache/l1")}),
		}
	}, strategy, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.sys.Root.StopFuture(root).Wait() })
	pids := map[string]*actor.PID{}
	actortest.Eventually(t, "the tiers to be spawned", func() bool {
		for _, name := range []string{"cache/l1", "cache/l2", "cache/l3"} {
			if pid, ok := reg.PID(name); ok {
				pids[name] = pid
			}
		}
		return len(pids) == 3
	})
	h.put(pids["cache/l3"], "k", "v", 0)
	h.put(pids["cache/l2"], "gone", "x", 0) // L2's memory does not survive the crash

	probe, answers := actortest.Probe(t, h.sys)
	h.sys.Root.Send(pids["cache/l2"], &messages.CacheLookup{Ref: 42, Key: "k", ReplyTo: probe})
	actortest.AwaitTimer(t, supClock) // L2 crashed: its restart waits out the backoff
	if n := strategy.PendingRestarts(); n != 1 {
		t.Fatalf("pending restarts = %d", n)
	}
	if e, _ := reg.Get("cache/l2"); e.State != supervisor.Restarting {
		t.Fatalf("l2 registry entry = %+v", e)
	}
	supClock.Advance(supervisor.DefaultPolicy().MaxBackoff)

	r := actortest.Recv[*messages.CacheLookedUp](t, answers)
	if !r.Found || r.Ref != 42 || r.Tier != messages.TierL3 || string(r.Value) != "v" {
		t.Fatalf("answer after the crash = %+v", r)
	}
	if extra := actortest.Drain(t, h.sys, probe, answers); len(extra) != 0 {
		t.Fatalf("more than one answer: %+v", extra)
	}
	if n := deliveries.Load(); n != 2 {
		t.Fatalf("the lookup was delivered %d times, want 2", n)
	}
	if got := h.metrics.GetOrCreateCounter(`deer_actor_redeliveries_total{actor="cache/l2"}`).Get(); got != 1 {
		t.Fatalf("redeliveries = %d", got)
	}
	if r := h.get(pids["cache/l2"], "gone"); r.Found {
		t.Fatal("l2 was not restarted (it kept its memory)")
	}
	ask[*messages.Pong](h, pids["cache/l1"], &messages.Ping{}) // the promotion was sent before the answer
	if v, _, ok := front.Lookup(h.clock.Now(), "k"); !ok || string(v) != "v" {
		t.Fatal("the redelivered lookup's hit was not promoted into l1")
	}
}
