package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// harness is one actor system with a fake clock and a live configuration.
type harness struct {
	t       *testing.T
	sys     *actor.ActorSystem
	clock   *clock.Fake
	live    *conf.Live
	metrics *metrics.Set
	stopped map[*actor.PID]bool
}

func newHarness(t *testing.T, mutate func(*conf.Config)) *harness {
	t.Helper()
	cfg := conf.Default()
	cfg.Cache.L3Path = t.TempDir()
	if mutate != nil {
		mutate(cfg)
	}
	sys := actortest.NewSystem(t) // its cleanup is registered first, so it runs after every actor stopped
	return &harness{t: t, sys: sys, clock: clock.NewFake(t0), live: conf.NewLive(cfg), metrics: metrics.NewSet(), stopped: map[*actor.PID]bool{}}
}

func (h *harness) spawn(tier string, next func() *actor.PID, opts ...actor.PropsOption) *actor.PID {
	h.t.Helper()
	props := Props(Deps{
		Tier: tier, Live: h.live, Clock: h.clock, Log: zerolog.Nop(), Metrics: h.metrics, Next: next,
	}).Configure(opts...)
	pid := h.sys.Root.Spawn(props)
	h.t.Cleanup(func() { h.stop(pid) })
	return pid
}

// stop stops pid and waits until it has (and so closed its store).
func (h *harness) stop(pid *actor.PID) {
	if h.stopped[pid] {
		return
	}
	h.stopped[pid] = true
	if err := h.sys.Root.StopFuture(pid).Wait(); err != nil {
		h.t.Errorf("stopping %v: %v", pid, err)
	}
}

func ask[T any](h *harness, pid *actor.PID, msg any) T {
	h.t.Helper()
	return actortest.Ask[T](h.t, h.sys, pid, msg)
}

func (h *harness) put(pid *actor.PID, key, value string, ttl float64) *messages.CacheStored {
	h.t.Helper()
	r := ask[*messages.CacheStored](h, pid, &messages.CachePut{Key: key, Value: []byte(value), TTL: ttl})
	if r.Key != key {
		h.t.Fatalf("stored %+v for key %q", r, key)
	}
	return r
}

func (h *harness) get(pid *actor.PID, key string) *messages.CacheResult {
	h.t.Helper()
	return ask[*messages.CacheResult](h, pid, &messages.CacheGet{Key: key})
}

func (h *harness) stats(pid *actor.PID) messages.CacheTierStats {
	h.t.Helper()
	return *actortest.Stats[*messages.CacheTierStats](h.t, h.sys, pid)
}

// apply changes the live configuration and hands it to the actors.
func (h *harness) apply(mutate func(*conf.Config), pids ...*actor.PID) {
	h.t.Helper()
	cfg := *h.live.Load()
	mutate(&cfg)
	h.live.Store(&cfg)
	for _, pid := range pids {
		if r := ask[*messages.ConfigApplied](h, pid, &messages.ApplyConfig{Config: &cfg}); r.Err != "" {
			h.t.Fatalf("%s: %s", r.Actor, r.Err)
		}
	}
}

func (h *harness) counter(name, tier string) uint64 {
	return h.metrics.GetOrCreateCounter(fmt.Sprintf("%s{tier=%q}", name, tier)).Get()
}

func (h *harness) gauge(name, tier string) float64 {
	return h.metrics.GetOrCreateGauge(fmt.Sprintf("%s{tier=%q}", name, tier), nil).Get()
}

func TestActorGetPutDeleteAndStats(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) { c.Cache.L1Size = 10 })
	l1 := h.spawn(messages.TierL1, nil)

	if r := h.put(l1, "k", "v", 0); !r.Stored || r.Tier != "l1" {
		t.Fatalf("put = %+v", r)
	}
	r := h.get(l1, "k")
	if !r.Found || string(r.Value) != "v" || r.Tier != "l1" || !r.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("get = %+v (default_ttl is 3600 s)", r)
	}
	if r := h.get(l1, "absent"); r.Found || r.Value != nil {
		t.Fatalf("get absent = %+v", r)
	}
	h.sys.Root.Send(l1, &messages.CacheDelete{Key: "k"})
	if r := h.get(l1, "k"); r.Found {
		t.Fatalf("get after delete = %+v", r)
	}
	h.put(l1, "k2", "v", 0)

	want := messages.CacheTierStats{Tier: "l1", Enabled: true, Policy: "lru", Entries: 1, Capacity: 10, Hits: 1, Misses: 2, TTL: 3600}
	if got := h.stats(l1); got != want {
		t.Fatalf("stats = %+v\nwant    %+v", got, want)
	}
	if hits, misses, entries := h.counter("deer_cache_hits_total", "l1"), h.counter("deer_cache_misses_total", "l1"), h.gauge("deer_cache_entries", "l1"); hits != 1 || misses != 2 || entries != 1 {
		t.Fatalf("metrics: hits %d misses %d entries %v", hits, misses, entries)
	}
	if st := ask[*messages.StatusReport](h, l1, &messages.StatusQuery{}); st.State != messages.StateHealthy || st.Actor != "cache/l1" {
		t.Fatalf("status = %+v", st)
	}
	if p := ask[*messages.Pong](h, l1, &messages.Ping{Seq: 7}); p.Seq != 7 || p.Actor != "cache/l1" {
		t.Fatalf("pong = %+v", p)
	}
	h.sys.Root.Send(l1, struct{}{}) // unknown: logged, not fatal
	if r := h.get(l1, "k2"); !r.Found {
		t.Fatal("actor lost state after an unknown message")
	}
}

func TestActorLiveResize(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) { c.Cache.L1Size = 4 })
	l1 := h.spawn(messages.TierL1, nil)
	for _, k := range []string{"a", "b", "c", "d"} {
		h.put(l1, k, k, 0)
	}
	h.get(l1, "a") // a is recent: b and c are the LRU victims

	h.apply(func(c *conf.Config) { c.Cache.L1Size = 2 }, l1)
	st := h.stats(l1)
	if st.Entries != 2 || st.Capacity != 2 || st.Evictions != 2 {
		t.Fatalf("after shrink: %+v", st)
	}
	for k, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true} {
		if r := h.get(l1, k); r.Found != want {
			t.Errorf("%s found = %v, want %v", k, r.Found, want)
		}
	}
	if n := h.counter("deer_cache_evictions_total", "l1"); n != 2 {
		t.Errorf("evictions metric = %d", n)
	}

	h.apply(func(c *conf.Config) { c.Cache.L1Size = 3 }, l1)
	h.put(l1, "e", "e", 0)
	if st := h.stats(l1); st.Entries != 3 || st.Capacity != 3 {
		t.Fatalf("after grow: %+v", st)
	}
}

func TestActorPolicySwitch(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) { c.Cache.L1Size = 3 })
	l1 := h.spawn(messages.TierL1, nil)
	for _, k := range []string{"a", "b", "c"} {
		h.put(l1, k, k, 0)
	}
	h.get(l1, "a") // under lru, b would go next

	h.apply(func(c *conf.Config) { c.Cache.EvictionPolicy = "fifo" }, l1)
	h.put(l1, "d", "d", 0) // under fifo, a goes: it was inserted first
	if r := h.get(l1, "a"); r.Found {
		t.Fatal("fifo kept a")
	}
	if r := h.get(l1, "b"); !r.Found {
		t.Fatal("fifo evicted b")
	}
	if st := h.stats(l1); st.Policy != "fifo" || st.Entries != 3 {
		t.Fatalf("stats = %+v", st)
	}

	r := ask[*messages.ConfigApplied](h, l1, &messages.ApplyConfig{Config: func() *conf.Config {
		c := *h.live.Load()
		c.Cache.EvictionPolicy = "random"
		c.Cache.L1Size = 1
		return &c
	}()})
	if !strings.Contains(r.Err, "cache.eviction_policy") {
		t.Fatalf("bad policy applied: %+v", r)
	}
	if st := h.stats(l1); st.Policy != "fifo" || st.Capacity != 3 {
		t.Fatalf("a rejected config changed settings: %+v", st)
	}
}

func TestActorTTLAndCleanupTick(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) {
		c.Cache.DefaultTTL = 10
		c.Cache.CleanupInterval = 5
	})
	l2 := h.spawn(messages.TierL2, nil)
	h.put(l2, "short", "x", 0)  // default ttl: expires at t0+10s
	h.put(l2, "long", "x", 100) // explicit ttl
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !h.clock.WaitForTimers(ctx, 1) {
		t.Fatal("no cleanup timer")
	}
	if p := h.clock.Pending(); len(p) != 1 || p[0] != 5*time.Second {
		t.Fatalf("pending timers = %v, want [5s]", p)
	}

	h.clock.Advance(5 * time.Second) // tick at t0+5s: nothing expired yet
	if st := h.stats(l2); st.Entries != 2 || st.Expired != 0 {
		t.Fatalf("at +5s: %+v", st)
	}
	if !h.clock.WaitForTimers(ctx, 1) { // the tick rescheduled the timer
		t.Fatal("cleanup timer not rearmed")
	}
	h.clock.Advance(5 * time.Second) // tick at t0+10s: "short" expires
	st := h.stats(l2)                // queued behind the tick, so it sees its effect
	if st.Entries != 1 || st.Expired != 1 || st.Misses != 0 {
		t.Fatalf("at +10s: %+v", st)
	}
	if n := h.counter("deer_cache_expired_total", "l2"); n != 1 {
		t.Fatalf("expired metric = %d", n)
	}
	if r := h.get(l2, "long"); !r.Found {
		t.Fatal("long expired early")
	}

	// A new cleanup_interval replaces the pending timer.
	if !h.clock.WaitForTimers(ctx, 1) {
		t.Fatal("cleanup timer not rearmed")
	}
	h.apply(func(c *conf.Config) { c.Cache.CleanupInterval = 60 }, l2)
	if p := h.clock.Pending(); len(p) != 1 || p[0] != 60*time.Second {
		t.Fatalf("pending timers after reschedule = %v, want [1m0s]", p)
	}

	// Expiry holds on read, between ticks.
	h.clock.Advance(50 * time.Second) // t0+60s, before the next tick at t0+70s
	h.put(l2, "x", "x", 1)
	h.clock.Advance(time.Second)
	if r := h.get(l2, "x"); r.Found {
		t.Fatal("served an entry past its ttl")
	}
}

func TestActorL1EvictionDemotesToL2(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) {
		c.Cache.L1Size = 2
		c.Cache.L2Size = 10
	})
	l2 := h.spawn(messages.TierL2, nil)
	l1 := h.spawn(messages.TierL1, func() *actor.PID { return l2 })

	h.put(l1, "a", "va", 0)
	h.put(l1, "b", "vb", 30)
	h.put(l1, "c", "vc", 0) // evicts a into l2
	if r := h.get(l1, "a"); r.Found {
		t.Fatal("a still in l1")
	}
	// l1 sent CacheEvicted before replying to the put, so it is ahead of this get in l2's mailbox.
	r := h.get(l2, "a")
	if !r.Found || string(r.Value) != "va" || r.Tier != "l2" || !r.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("l2 get a = %+v", r)
	}

	// Shrinking l1 demotes too, and keeps the expiry set in l1.
	h.apply(func(c *conf.Config) { c.Cache.L1Size = 1 }, l1)
	r = h.get(l2, "b")
	if !r.Found || !r.ExpiresAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("l2 get b = %+v", r)
	}
	if st := h.stats(l2); st.Entries != 2 || st.Evictions != 0 {
		t.Fatalf("l2 stats = %+v", st)
	}

	// Expired entries are not demoted.
	h.clock.Advance(time.Hour)
	h.put(l1, "d", "vd", 0) // evicts c, expired at t0+1h
	if r := h.get(l2, "c"); r.Found {
		t.Fatal("expired entry demoted")
	}
}

func TestActorDemotionChainToL3(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) {
		c.Cache.L1Size = 1
		c.Cache.L2Size = 1
		c.Cache.L3Size = 10
	})
	l3 := h.spawn(messages.TierL3, nil)
	l2 := h.spawn(messages.TierL2, func() *actor.PID { return l3 })
	l1 := h.spawn(messages.TierL1, func() *actor.PID { return l2 })
	for _, k := range []string{"a", "b", "c"} {
		h.put(l1, k, "v"+k, 0) // a: l1 → l2 → l3; b: l1 → l2
	}
	// l2 forwards to l3 on its own goroutine: poll.
	actortest.Eventually(t, "a to reach l3", func() bool { return h.get(l3, "a").Found })
	if r := h.get(l3, "a"); string(r.Value) != "va" || r.Tier != "l3" {
		t.Fatalf("l3 get a = %+v", r)
	}
	if r := h.get(l2, "b"); !r.Found {
		t.Fatal("b not in l2")
	}
}

func TestActorDisabled(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) { c.EnableAdvancedOptimization = false })
	l1 := h.spawn(messages.TierL1, nil)

	if st := ask[*messages.StatusReport](h, l1, &messages.StatusQuery{}); st.State != messages.StateDisabled {
		t.Fatalf("status = %+v", st)
	}
	if r := h.put(l1, "k", "v", 0); r.Stored || r.Err == "" {
		t.Fatalf("disabled put = %+v", r)
	}
	if r := h.get(l1, "k"); r.Found {
		t.Fatal("disabled get found")
	}
	if st := h.stats(l1); st.Enabled || st.Entries != 0 || st.Misses != 0 {
		t.Fatalf("disabled stats = %+v", st)
	}

	h.apply(func(c *conf.Config) { c.EnableAdvancedOptimization = true }, l1)
	if st := ask[*messages.StatusReport](h, l1, &messages.StatusQuery{}); st.State != messages.StateHealthy {
		t.Fatalf("status after enable = %+v", st)
	}
	h.put(l1, "k", "v", 0)

	// Off again: entries are kept but not served; on again: served.
	h.apply(func(c *conf.Config) { c.EnableAdvancedOptimization = false }, l1)
	if r := h.get(l1, "k"); r.Found {
		t.Fatal("disabled get found")
	}
	if st := h.stats(l1); st.Entries != 1 {
		t.Fatalf("entries dropped on disable: %+v", st)
	}
	h.apply(func(c *conf.Config) { c.EnableAdvancedOptimization = true }, l1)
	if r := h.get(l1, "k"); !r.Found {
		t.Fatal("entry kept through disable not served")
	}
}

func TestActorL3PersistsAcrossRestart(t *testing.T) {
	h := newHarness(t, func(c *conf.Config) { c.Cache.DefaultTTL = 60 })
	l3 := h.spawn(messages.TierL3, nil)
	h.put(l3, "k", "persisted", 0)
	h.put(l3, "brief", "x", 5)
	h.stop(l3)

	h.clock.Advance(10 * time.Second) // "brief" expires while no actor runs
	l3 = h.spawn(messages.TierL3, nil)
	r := h.get(l3, "k")
	if !r.Found || string(r.Value) != "persisted" || r.Tier != "l3" || !r.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after restart: %+v", r)
	}
	if r := h.get(l3, "brief"); r.Found {
		t.Fatal("expired entry survived the restart")
	}
	if st := h.stats(l3); st.Entries != 1 || st.Hits != 1 {
		t.Fatalf("stats after restart = %+v", st)
	}

	// A whole new actor system (as after a process restart) sees it too.
	h.stop(l3)
	h2 := newHarness(t, nil)
	h2.live = h.live
	h2.clock = h.clock
	l3b := h2.spawn(messages.TierL3, nil)
	if r := h2.get(l3b, "k"); !r.Found {
		t.Fatal("not found from a new actor system")
	}
	if _, err := os.Stat(filepath.Join(h.live.Load().Cache.L3Path, DBFile)); err != nil {
		t.Fatal(err)
	}
}

type crash struct{}

// crashOn makes the actor panic on *crash, as fault injection will.
func crashOn(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		if _, ok := env.Message.(*crash); ok {
			panic("injected")
		}
		next(c, env)
	}
}

// A crashed L3 closes its file on Restarting, so its successor can open it
// (bbolt locks the file) and still has the entries; it also runs with the
// configuration applied live before the crash.
func TestActorL3SurvivesCrashRestart(t *testing.T) {
	h := newHarness(t, nil)
	l3 := h.spawn(messages.TierL3, nil, actor.WithReceiverMiddleware(crashOn))
	h.put(l3, "k", "v", 0)
	h.apply(func(c *conf.Config) { c.Cache.EvictionPolicy = "lfu"; c.Cache.L3Size = 5 }, l3)

	h.sys.Root.Send(l3, &crash{})
	if r := h.get(l3, "k"); !r.Found || string(r.Value) != "v" {
		t.Fatalf("after crash: %+v", r)
	}
	st := h.stats(l3)
	if st.Policy != "lfu" || st.Capacity != 5 || st.Hits != 1 {
		t.Fatalf("stats after crash = %+v (counters restart, config does not)", st)
	}
	if s := ask[*messages.StatusReport](h, l3, &messages.StatusQuery{}); s.State != messages.StateHealthy {
		t.Fatalf("status after crash = %+v", s)
	}
}

func TestActorL3DegradedWhenStoreCannotOpen(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *conf.Config) { c.Cache.L3Path = file })
	l3 := h.spawn(messages.TierL3, nil)

	st := ask[*messages.StatusReport](h, l3, &messages.StatusQuery{})
	if st.State != messages.StateDegraded || !strings.Contains(st.Detail, "cache.l3_path") {
		t.Fatalf("status = %+v", st)
	}
	if r := h.put(l3, "k", "v", 0); r.Stored || !strings.Contains(r.Err, "cache.l3_path") {
		t.Fatalf("put = %+v", r)
	}
	if r := h.get(l3, "k"); r.Found {
		t.Fatal("found in a store that is not open")
	}
	if st := h.stats(l3); st.Entries != 0 || st.Capacity != 10000 {
		t.Fatalf("stats = %+v", st)
	}

	// A usable path applied live opens the store.
	dir := t.TempDir()
	h.apply(func(c *conf.Config) { c.Cache.L3Path = dir }, l3)
	if st := ask[*messages.StatusReport](h, l3, &messages.StatusQuery{}); st.State != messages.StateHealthy {
		t.Fatalf("status after fix = %+v", st)
	}
	if r := h.put(l3, "k", "v", 0); !r.Stored {
		t.Fatalf("put after fix = %+v", r)
	}
	if r := h.get(l3, "k"); !r.Found {
		t.Fatal("get after fix missed")
	}
}

func TestPropsRejectsUnknownTier(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Props(Deps{Tier: "l4"})
}
