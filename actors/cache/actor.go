package cache

import (
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// Deps is what a cache tier actor needs from its parent.
type Deps struct {
	Tier    string         // messages.TierL1, TierL2 or TierL3
	Name    string         // SPEC §6 name; default "cache/" + Tier
	Live    *conf.Live     // read on every Started; default conf.Default()
	Clock   clock.Clock    // default clock.Real{}
	Log     zerolog.Logger // already carrying the actor name
	Metrics *metrics.Set   // default: a private set
	// Next returns the tier below, which receives this tier's evictions as
	// *messages.CacheEvicted; nil, or a nil PID, drops them. A function
	// rather than a PID so that a restarted L2 is found under its new PID.
	Next func() *actor.PID
}

// Props builds a cache tier actor. It panics if d.Tier is not a tier name:
// that is a wiring mistake, not a runtime condition.
func Props(d Deps) *actor.Props {
	switch d.Tier {
	case messages.TierL1, messages.TierL2, messages.TierL3:
	default:
		panic(fmt.Sprintf("cache.Props: unknown tier %q", d.Tier))
	}
	if d.Name == "" {
		d.Name = "cache/" + d.Tier
	}
	admin.Defaults(&d.Clock, &d.Metrics, &d.Live)
	return actor.PropsFromProducer(func() actor.Actor { return newActor(d) })
}

var _ actor.Actor = (*Actor)(nil)

// Actor is one cache tier. Its state is touched only on its own goroutine.
type Actor struct {
	d   Deps
	log zerolog.Logger
	set settings

	store   backend // nil until opened; stays nil while L3 cannot open
	openErr error   // why L3 could not open
	ioErr   error   // the last L3 read or write failure, until one succeeds
	l3Dir   string  // where L3 is open: cache.l3_path changes apply on restart

	system *actor.ActorSystem
	self   *actor.PID
	timer  clock.Timer
	gen    uint64 // cleanup timer generation: ticks of older ones are stale

	m      tierMetrics
	synced Counters // core counters already added to the Prometheus counters
}

// cleanupTick is the cleanup timer firing; gen tells stale ticks apart.
type cleanupTick struct{ gen uint64 }

// settings are the configuration keys a tier owns, parsed.
type settings struct {
	enabled bool
	size    int
	policy  Policy
	ttl     time.Duration // 0: entries do not expire
	cleanup time.Duration // 0: no periodic cleanup
	l3Path  string
}

func settingsFor(tier string, cfg *conf.Config) (settings, error) {
	p, err := ParsePolicy(cfg.Cache.EvictionPolicy)
	s := settings{
		enabled: cfg.EnableAdvancedOptimization,
		policy:  p,
		ttl:     max(conf.Seconds(cfg.Cache.DefaultTTL), 0),
		cleanup: max(conf.Seconds(cfg.Cache.CleanupInterval), 0),
		l3Path:  cfg.Cache.L3Path,
	}
	switch tier {
	case messages.TierL1:
		s.size = cfg.Cache.L1Size
	case messages.TierL2:
		s.size = cfg.Cache.L2Size
	default:
		s.size = cfg.Cache.L3Size
	}
	return s, err
}

// backend is a tier's storage: a Store in memory, a DiskStore for L3.
type backend interface {
	Get(now time.Time, key string) (Entry, bool, error)
	PutUntil(key string, value []byte, expiresAt time.Time) ([]Entry, error)
	Delete(key string) (bool, error)
	Resize(capacity int) ([]Entry, error)
	SetPolicy(p Policy)
	PurgeExpired(now time.Time) ([]string, error)
	Index() *Store
	Close() error
}

// memory adapts Store to backend; it never fails.
type memory struct{ *Store }

func (m memory) Get(now time.Time, key string) (Entry, bool, error) {
	e, o := m.Lookup(now, key)
	return e, o == Hit, nil
}
func (m memory) PutUntil(key string, value []byte, exp time.Time) ([]Entry, error) {
	return m.Store.PutUntil(key, value, exp), nil
}
func (m memory) Delete(key string) (bool, error)            { return m.Store.Delete(key), nil }
func (m memory) Resize(n int) ([]Entry, error)              { return m.Store.Resize(n), nil }
func (m memory) PurgeExpired(t time.Time) ([]string, error) { return m.Store.PurgeExpired(t), nil }
func (m memory) Index() *Store                              { return m.Store }
func (m memory) Close() error                               { return nil }

type tierMetrics struct {
	hits, misses, evictions, expired *metrics.Counter
	entries                          *metrics.Gauge
}

func newTierMetrics(s *metrics.Set, tier string) tierMetrics {
	name := func(n string) string { return fmt.Sprintf("%s{tier=%q}", n, tier) }
	return tierMetrics{
		hits:      s.GetOrCreateCounter(name("deer_cache_hits_total")),
		misses:    s.GetOrCreateCounter(name("deer_cache_misses_total")),
		evictions: s.GetOrCreateCounter(name("deer_cache_evictions_total")),
		expired:   s.GetOrCreateCounter(name("deer_cache_expired_total")),
		entries:   s.GetOrCreateGauge(name("deer_cache_entries"), nil),
	}
}

func newActor(d Deps) *Actor {
	return &Actor{d: d, log: d.Log, m: newTierMetrics(d.Metrics, d.Tier)}
}

// Receive handles one message.
func (a *Actor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *actor.Stopping, *actor.Restarting:
		a.shutdown()
	case *actor.Stopped:
	case *messages.CacheGet:
		a.get(ctx, msg)
	case *messages.CachePut:
		a.put(ctx, msg)
	case *messages.CacheDelete:
		if a.store != nil {
			_, err := a.store.Delete(msg.Key)
			a.noteIO(err)
		}
	case *messages.CacheEvicted:
		a.demoted(ctx, msg)
	case *cleanupTick:
		if msg.gen == a.gen {
			a.cleanup(ctx)
			a.schedule()
		}
	case *messages.StatusQuery:
		a.respond(ctx, a.status())
	case *messages.StatsQuery:
		a.respond(ctx, &messages.StatsReport{Actor: a.d.Name, Stats: a.stats()})
	case *messages.ApplyConfig:
		reply := &messages.ConfigApplied{Actor: a.d.Name}
		if err := a.apply(ctx, msg.Config); err != nil {
			reply.Err = err.Error()
		}
		a.respond(ctx, reply)
	case *messages.Ping:
		a.respond(ctx, &messages.Pong{Actor: a.d.Name, Seq: msg.Seq})
	default:
		a.log.Debug().Type("type", msg).Msg("unknown message")
	}
	a.syncMetrics()
}

// respond replies when there is someone to reply to. Metrics are synced
// first so that whoever got the reply also sees them.
func (a *Actor) respond(ctx actor.Context, msg any) {
	if ctx.Sender() != nil {
		a.syncMetrics()
		ctx.Respond(msg)
	}
}

// start builds the tier from the configuration in force, so a restarted
// actor runs with what was applied live before it crashed.
func (a *Actor) start(ctx actor.Context) {
	a.system, a.self = ctx.ActorSystem(), ctx.Self()
	s, err := settingsFor(a.d.Tier, a.d.Live.Load())
	if err != nil { // validation should have caught it; do not crash-loop on it
		a.log.Error().Err(err).Msg("falling back to lru")
		s.policy = LRU
	}
	a.set = s
	a.open()
	a.schedule()
}

// open creates the backend. An L3 store that cannot open leaves the tier
// degraded, serving misses; cleanup ticks and ApplyConfig try again.
func (a *Actor) open() {
	if a.store != nil {
		return
	}
	if a.d.Tier != messages.TierL3 {
		a.store = memory{NewStore(a.set.size, a.set.policy)}
		return
	}
	ds, err := OpenDisk(a.set.l3Path, a.set.size, a.set.policy, a.d.Clock.Now())
	if err != nil {
		if a.openErr == nil || a.openErr.Error() != err.Error() {
			a.log.Error().Err(err).Msg("l3 store unavailable; serving misses")
		}
		a.openErr = err
		return
	}
	a.store, a.openErr, a.l3Dir = ds, nil, a.set.l3Path
	a.log.Info().Str("path", a.l3Dir).Int("entries", ds.Index().Len()).Msg("l3 store open")
}

func (a *Actor) shutdown() {
	a.stopTimer()
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Error().Err(err).Msg("closing store")
		}
		a.store = nil
	}
}

func (a *Actor) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.gen++ // a tick already on its way is now stale
}

// schedule (re)arms the cleanup timer. The timer only sends a message:
// the cleanup itself runs on the actor's goroutine.
func (a *Actor) schedule() {
	a.stopTimer()
	if a.set.cleanup <= 0 {
		return
	}
	gen, system, self := a.gen, a.system, a.self
	a.timer = a.d.Clock.AfterFunc(a.set.cleanup, func() {
		system.Root.Send(self, &cleanupTick{gen: gen})
	})
}

func (a *Actor) cleanup(ctx actor.Context) {
	a.open()
	if a.store == nil {
		return
	}
	keys, err := a.store.PurgeExpired(a.d.Clock.Now())
	a.noteIO(err)
	if len(keys) > 0 {
		a.log.Debug().Int("expired", len(keys)).Msg("cleanup")
	}
}

func (a *Actor) get(ctx actor.Context, msg *messages.CacheGet) {
	res := &messages.CacheResult{Key: msg.Key, Tier: a.d.Tier}
	if a.set.enabled && a.store != nil {
		e, ok, err := a.store.Get(a.d.Clock.Now(), msg.Key)
		a.noteIO(err)
		if ok {
			res.Value, res.Found, res.ExpiresAt = e.Value, true, e.ExpiresAt
		}
	}
	a.respond(ctx, res)
}

func (a *Actor) put(ctx actor.Context, msg *messages.CachePut) {
	reply := &messages.CacheStored{Key: msg.Key, Tier: a.d.Tier}
	switch {
	case !a.set.enabled:
		reply.Err = "cache disabled (enable_advanced_optimization = false)"
	case a.store == nil:
		reply.Err = "l3 store unavailable"
		if a.openErr != nil {
			reply.Err = a.openErr.Error()
		}
	default:
		ttl := a.set.ttl
		if msg.TTL > 0 {
			ttl = conf.Seconds(msg.TTL)
		}
		var exp time.Time
		if ttl > 0 {
			exp = a.d.Clock.Now().Add(ttl)
		}
		evicted, err := a.store.PutUntil(msg.Key, msg.Value, exp)
		a.noteIO(err)
		a.demote(ctx, evicted)
		if err != nil {
			reply.Err = err.Error()
		} else {
			reply.Stored = true
		}
	}
	a.respond(ctx, reply)
}

// demoted stores an entry the tier above evicted, keeping its expiry.
func (a *Actor) demoted(ctx actor.Context, msg *messages.CacheEvicted) {
	if !a.set.enabled || a.store == nil {
		return
	}
	if (Entry{ExpiresAt: msg.ExpiresAt}).Expired(a.d.Clock.Now()) {
		return
	}
	evicted, err := a.store.PutUntil(msg.Key, msg.Value, msg.ExpiresAt)
	a.noteIO(err)
	a.demote(ctx, evicted)
}

// demote hands evicted entries to the next tier. L3 evictions carry no
// value (it stays on disk, and is deleted), so L3 never demotes.
func (a *Actor) demote(ctx actor.Context, evicted []Entry) {
	if len(evicted) == 0 || a.d.Next == nil || a.d.Tier == messages.TierL3 {
		return
	}
	next := a.d.Next()
	if next == nil {
		a.log.Debug().Int("entries", len(evicted)).Msg("no next tier; evictions dropped")
		return
	}
	now := a.d.Clock.Now()
	for _, e := range evicted {
		if !e.Expired(now) {
			ctx.Send(next, &messages.CacheEvicted{Key: e.Key, Value: e.Value, ExpiresAt: e.ExpiresAt})
		}
	}
}

// apply takes the configuration now in force. An invalid setting changes
// nothing. cache.l3_path applies when the actor (re)starts, unless L3 is
// not open yet, in which case the new path is tried at once.
func (a *Actor) apply(ctx actor.Context, cfg *conf.Config) error {
	if cfg == nil {
		return fmt.Errorf("no configuration")
	}
	s, err := settingsFor(a.d.Tier, cfg)
	if err != nil {
		return err
	}
	old := a.set
	a.set = s
	if a.store == nil {
		a.open()
	} else {
		// Policy first, so that a shrink evicts by the new policy.
		if s.policy != old.policy {
			a.store.SetPolicy(s.policy)
		}
		if s.size != old.size {
			evicted, err := a.store.Resize(s.size)
			a.noteIO(err)
			a.demote(ctx, evicted)
		}
		if a.d.Tier == messages.TierL3 && s.l3Path != a.l3Dir {
			a.log.Info().Str("open", a.l3Dir).Str("configured", s.l3Path).
				Msg("cache.l3_path changes apply when cache/l3 restarts")
		}
	}
	if s.cleanup != old.cleanup {
		a.schedule()
	}
	return nil
}

func (a *Actor) noteIO(err error) {
	if err != nil {
		a.log.Error().Err(err).Msg("store operation failed")
	}
	a.ioErr = err
}

func (a *Actor) status() *messages.StatusReport {
	r := &messages.StatusReport{Actor: a.d.Name, State: messages.StateHealthy}
	switch {
	case a.openErr != nil:
		r.State, r.Detail = messages.StateDegraded, a.openErr.Error()
	case a.ioErr != nil:
		r.State, r.Detail = messages.StateDegraded, a.ioErr.Error()
	}
	if !a.set.enabled {
		r.State = messages.StateDisabled
		if r.Detail == "" {
			r.Detail = "enable_advanced_optimization is false"
		}
	}
	return r
}

func (a *Actor) stats() *messages.CacheTierStats {
	st := &messages.CacheTierStats{
		Tier:     a.d.Tier,
		Enabled:  a.set.enabled,
		Policy:   a.set.policy.String(),
		Capacity: a.set.size,
		TTL:      a.set.ttl.Seconds(),
	}
	if a.store != nil {
		idx := a.store.Index()
		c := idx.Counters()
		st.Entries, st.Capacity = idx.Len(), idx.Cap()
		st.Hits, st.Misses, st.Evictions, st.Expired = c.Hits, c.Misses, c.Evictions, c.Expired
	}
	return st
}

// syncMetrics adds what the core counted since the last message to the
// Prometheus counters, which outlive actor restarts (same Set, same names)
// while the core's counters start again from zero.
func (a *Actor) syncMetrics() {
	if a.store == nil {
		a.m.entries.Set(0)
		return
	}
	idx := a.store.Index()
	c := idx.Counters()
	a.m.hits.AddInt64(int64(c.Hits - a.synced.Hits))
	a.m.misses.AddInt64(int64(c.Misses - a.synced.Misses))
	a.m.evictions.AddInt64(int64(c.Evictions - a.synced.Evictions))
	a.m.expired.AddInt64(int64(c.Expired - a.synced.Expired))
	a.synced = c
	a.m.entries.Set(float64(idx.Len()))
}
