package cache

import (
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/redis/go-redis/v9"
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
	// *messages.CacheEvicted and the *messages.CacheLookup it misses; nil,
	// or a nil PID, drops the evictions and answers the lookups' misses
	// here. A function rather than a PID so that a restarted tier is found
	// under its new PID. L3 is the last tier and uses no Next.
	Next func() *actor.PID
	// Top returns cache/l1, into which L2 and L3 promote what a
	// *messages.CacheLookup found; nil, or a nil PID, promotes nothing.
	// Looked up on every use, like Next.
	Top func() *actor.PID
	// Front, for cache/l1 only, is the store the router reads without a
	// message (see Front). The actor is its only writer and keeps its
	// entries across restarts. nil: a private store that a restart empties.
	Front *Front
	// Redis is the cluster's Redis (cluster.redis_url), where cache/l3
	// keeps its entries with cache.l3_backend = "redis"; nil on a single
	// node. The actor never closes it.
	Redis *redis.Client
}

// Props builds a cache tier actor. It panics if d.Tier is not a tier name:
// that is a wiring mistake, not a runtime condition.
func Props(d Deps) *actor.Props {
	switch d.Tier {
	case messages.TierL1, messages.TierL2, messages.TierL3:
	default:
		panic(fmt.Sprintf("cache.Props: unknown tier %q", d.Tier))
	}
	if d.Front != nil && d.Tier != messages.TierL1 {
		panic(fmt.Sprintf("cache.Props: a Front belongs to cache/l1, not to tier %q", d.Tier))
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
	tried   bool    // L3 has tried to open once: later tries do not wait for the lock
	ioErr   error   // the last L3 read or write failure, until one succeeds
	l3Dir   string  // where L3 is open: cache.l3_path changes apply on restart

	system *actor.ActorSystem
	self   *actor.PID
	timer  clock.Timer
	gen    uint64 // cleanup timer generation: ticks of older ones are stale

	// meter syncs the core's counters into the Prometheus ones; unused
	// with a Front, which syncs its own.
	meter meter
	// unserved counts lookups missed because L3's store is unavailable:
	// they missed every tier, and the store that would count them is not
	// there. Part of the tier's Misses.
	unserved uint64
}

// cleanupTick is the cleanup timer firing; gen tells stale ticks apart.
type cleanupTick struct{ gen uint64 }

// promoted is a hit of a CacheLookup in L2 or L3, sent to L1. It carries
// the absolute expiry, so that promotion never extends an entry's life
// (not even by the time the message takes), and an entry without expiry
// stays without. It never crosses machines, so it stays in this package.
type promoted struct {
	Key       string
	Value     []byte
	ExpiresAt time.Time
}

// settings are the configuration keys a tier owns, parsed.
type settings struct {
	enabled bool
	size    int
	policy  Policy
	ttl     time.Duration // 0: entries do not expire
	cleanup time.Duration // 0: no periodic cleanup
	l3Path  string
	l3Redis bool // cache.l3_backend = "redis"
}

func settingsFor(tier string, cfg *conf.Config) (settings, error) {
	p, err := ParsePolicy(cfg.Cache.EvictionPolicy)
	s := settings{
		enabled: cfg.EnableAdvancedOptimization,
		policy:  p,
		ttl:     max(conf.Seconds(cfg.Cache.DefaultTTL), 0),
		cleanup: max(conf.Seconds(cfg.Cache.CleanupInterval), 0),
		l3Path:  cfg.Cache.L3Path,
		l3Redis: cfg.Cache.L3Backend == "redis",
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

// backend is a tier's storage: a Store in memory, a DiskStore or a
// redisStore for L3.
type backend interface {
	Get(now time.Time, key string) (Entry, bool, error)
	PutUntil(key string, value []byte, expiresAt time.Time) ([]Entry, error)
	Delete(key string) (bool, error)
	Resize(capacity int) ([]Entry, error)
	SetPolicy(p Policy)
	PurgeExpired(now time.Time) ([]string, error)
	Close() error
	// holds reports a live entry for key, without counting an access.
	holds(now time.Time, key string) bool
	// stats are the numbers StatsQuery and the metrics report.
	stats() (entries, capacity int, c Counters)
}

// holds reports whether s has a live entry for key at now, without
// counting anything or touching the order.
func holds(s *Store, now time.Time, key string) bool {
	n, ok := s.items[key]
	return ok && !n.Expired(now)
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
func (m memory) Close() error                               { return nil }
func (m memory) holds(now time.Time, key string) bool       { return holds(m.Store, now, key) }
func (m memory) stats() (int, int, Counters)                { return m.Len(), m.Cap(), m.Counters() }

// disk adapts DiskStore to backend.
type disk struct{ *DiskStore }

func (d disk) holds(now time.Time, key string) bool { return holds(d.Index(), now, key) }
func (d disk) stats() (int, int, Counters) {
	idx := d.Index()
	return idx.Len(), idx.Cap(), idx.Counters()
}

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

// meter adds what a store counted since the last sync to the Prometheus
// counters, which outlive the store and the actor (same Set, same names)
// while a new store counts from zero.
type meter struct {
	m       tierMetrics
	synced  Counters // the store's counters already added
	entries int      // the gauge's value, plus one (0: not set yet)
}

func (mt *meter) sync(entries int, c Counters) {
	if c != mt.synced {
		addDelta(mt.m.hits, c.Hits, mt.synced.Hits)
		addDelta(mt.m.misses, c.Misses, mt.synced.Misses)
		addDelta(mt.m.evictions, c.Evictions, mt.synced.Evictions)
		addDelta(mt.m.expired, c.Expired, mt.synced.Expired)
		mt.synced = c
	}
	if entries+1 != mt.entries {
		mt.m.entries.Set(float64(entries))
		mt.entries = entries + 1
	}
}

func addDelta(ctr *metrics.Counter, now, before uint64) {
	if now != before {
		ctr.AddInt64(int64(now - before))
	}
}

func newActor(d Deps) *Actor {
	return &Actor{d: d, log: d.Log, meter: meter{m: newTierMetrics(d.Metrics, d.Tier)}}
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
	case *messages.CacheLookup:
		a.lookup(ctx, msg)
	case *promoted:
		a.promoted(ctx, msg)
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
	if a.d.Front != nil {
		a.takeFront(ctx)
	}
	a.schedule()
}

// takeFront makes the Front this incarnation's store: the entries a
// previous one left stay, under the configuration now in force (a bound
// that shrank while the actor was down demotes the overflow).
func (a *Actor) takeFront(ctx actor.Context) {
	f := a.d.Front
	f.attach(a.meter.m)
	a.store.SetPolicy(a.set.policy)
	evicted, _ := a.store.Resize(a.set.size)
	a.demote(ctx, evicted)
	f.setEnabled(a.set.enabled)
}

// open creates the backend. An L3 store that cannot open leaves the tier
// degraded, serving misses; cleanup ticks and ApplyConfig try again.
func (a *Actor) open() {
	if a.store != nil {
		return
	}
	if a.d.Front != nil {
		a.store = frontStore{a.d.Front}
		return
	}
	if a.d.Tier != messages.TierL3 {
		a.store = memory{NewStore(a.set.size, a.set.policy)}
		return
	}
	// The first try waits for a lock that a deerd shutting down is about to
	// release; retries (cleanup ticks, ApplyConfig) do not wait, so they
	// neither hold up lookups nor make a configuration change late.
	wait := openTimeout
	if a.tried {
		wait = time.Nanosecond
	}
	a.tried = true
	available := a.d.Metrics.GetOrCreateGauge("deer_cache_l3_available", nil)
	if a.set.l3Redis {
		a.openRedis(available)
		return
	}
	ds, err := openDiskWait(a.set.l3Path, a.set.size, a.set.policy, a.d.Clock.Now(), wait)
	if err != nil {
		available.Set(0)
		if a.openErr == nil || a.openErr.Error() != err.Error() {
			if errors.Is(err, ErrLocked) {
				// Expected with a second deerd on the machine: it serves,
				// without L3, and says how to give it its own.
				a.log.Warn().Err(err).Str("retry_every", a.set.cleanup.String()).
					Msg("l3 store unavailable: serving with L1 and L2 only; tried again every cache.cleanup_interval")
			} else {
				a.log.Error().Err(err).Msg("l3 store unavailable; serving misses")
			}
		}
		a.openErr = err
		return
	}
	available.Set(1)
	a.store, a.openErr, a.l3Dir = disk{ds}, nil, a.set.l3Path
	a.log.Info().Str("path", a.l3Dir).Int("entries", ds.Index().Len()).Msg("l3 store open")
}

// openRedis makes the cluster's Redis this tier's store. The client
// connects lazily, so this cannot fail on a Redis that is down: the tier
// opens, reports degraded while calls fail, and heals on the first call
// that succeeds.
func (a *Actor) openRedis(available *metrics.Gauge) {
	if a.d.Redis == nil {
		available.Set(0)
		a.openErr = errNoRedis
		a.log.Error().Err(errNoRedis).Msg("l3 store unavailable; serving misses")
		return
	}
	rs := newRedisStore(a.d.Redis, a.set.size, a.set.policy, a.d.Clock.Now)
	a.store, a.openErr, a.l3Dir = rs, nil, "" // no file is open
	err := rs.refresh()
	a.noteIO(err)
	if err == nil {
		available.Set(1)
	}
	a.log.Info().Int("entries", rs.entries).Str("unused_l3_path", a.set.l3Path).
		Msg("l3 store open in the cluster's redis (cache.l3_backend = \"redis\"): shared by every node; cache.l3_path is unused")
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
	if e, ok := a.read(msg.Key); ok {
		res.Value, res.Found, res.ExpiresAt = e.Value, true, e.ExpiresAt
	}
	a.respond(ctx, res)
}

// read looks key up for a CacheGet or a CacheLookup. A disabled tier
// misses without counting; an L3 without its store misses and counts it.
func (a *Actor) read(key string) (Entry, bool) {
	switch {
	case !a.set.enabled:
		return Entry{}, false
	case a.store == nil:
		a.unserved++
		a.meter.m.misses.Inc()
		return Entry{}, false
	}
	e, ok, err := a.store.Get(a.d.Clock.Now(), key)
	a.noteIO(err)
	return e, ok
}

// lookup is this tier's step in the lookup chain (doc.go): a hit is
// promoted into L1 and answered here; a miss goes on to the next tier, or
// is answered here when there is none (L3, or no tier below running). A
// disabled tier answers the miss at once: the whole cache is off.
//
// The promotion is sent before the answer, so once the caller has the
// answer, whatever it sends cache/l1 next is processed after it.
func (a *Actor) lookup(ctx actor.Context, msg *messages.CacheLookup) {
	replyTo := msg.ReplyTo
	if replyTo == nil {
		replyTo = ctx.Sender() // asked with Request: answer the asker
	}
	res := &messages.CacheLookedUp{Ref: msg.Ref, Key: msg.Key}
	if e, ok := a.read(msg.Key); ok {
		a.promote(ctx, msg.Key, e)
		res.Value, res.Found, res.Tier, res.ExpiresAt = e.Value, true, a.d.Tier, e.ExpiresAt
		a.answer(ctx, replyTo, res)
		return
	}
	if next := a.below(); next != nil && a.set.enabled {
		if msg.ReplyTo == nil && replyTo != nil {
			fwd := *msg // the message may be redelivered: do not modify it
			fwd.ReplyTo = replyTo
			msg = &fwd
		}
		ctx.Send(next, msg)
		return
	}
	a.answer(ctx, replyTo, res)
}

func (a *Actor) answer(ctx actor.Context, to *actor.PID, res *messages.CacheLookedUp) {
	if to == nil {
		a.log.Debug().Str("key", res.Key).Msg("cache lookup with nowhere to answer")
		return
	}
	ctx.Send(to, res)
}

// below is the tier lookups and evictions go down to; nil for L3.
func (a *Actor) below() *actor.PID {
	if a.d.Next == nil || a.d.Tier == messages.TierL3 {
		return nil
	}
	return a.d.Next()
}

// promote hands a lookup hit to L1 with the expiry it has. L2 then drops
// its copy: L1 hands it back when it evicts it, and L1 and L2 holding
// different entries hold more of them. L3, the persistent tier that the
// caller writes through to, keeps its copy. Without a running L1 nothing
// is promoted and L2 keeps the entry.
func (a *Actor) promote(ctx actor.Context, key string, e Entry) {
	if a.d.Tier == messages.TierL1 || a.d.Top == nil {
		return
	}
	top := a.d.Top()
	if top == nil {
		return
	}
	ctx.Send(top, &promoted{Key: key, Value: e.Value, ExpiresAt: e.ExpiresAt})
	if a.d.Tier == messages.TierL2 {
		_, err := a.store.Delete(key)
		a.noteIO(err)
	}
}

// promoted stores a hit a lower tier promoted, keeping its expiry. An
// entry the tier already holds live stays as it is: it was put or promoted
// since the lower tier's copy was made (a refreshed answer, say), so it is
// at least as new.
func (a *Actor) promoted(ctx actor.Context, msg *promoted) {
	if !a.set.enabled || a.store == nil {
		return
	}
	now := a.d.Clock.Now()
	if (Entry{ExpiresAt: msg.ExpiresAt}).Expired(now) || a.store.holds(now, msg.Key) {
		return
	}
	evicted, err := a.store.PutUntil(msg.Key, msg.Value, msg.ExpiresAt)
	a.noteIO(err)
	a.demote(ctx, evicted)
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
	if a.d.Front != nil {
		a.d.Front.setEnabled(s.enabled)
	}
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
		if a.d.Tier == messages.TierL3 && !s.l3Redis && s.l3Path != a.l3Dir {
			a.log.Info().Str("open", a.l3Dir).Str("configured", s.l3Path).
				Msg("cache.l3_path changes apply when cache/l3 restarts")
		}
	}
	if s.cleanup != old.cleanup {
		a.schedule()
	}
	return nil
}

// noteIO records the outcome of a store operation. A Redis store reports
// its availability in deer_cache_l3_available as it goes, and logs a
// failure once per change rather than once per lookup (a Redis down fails
// every lookup); a disk failure is logged every time.
func (a *Actor) noteIO(err error) {
	if _, shared := a.store.(*redisStore); shared {
		available := a.d.Metrics.GetOrCreateGauge("deer_cache_l3_available", nil)
		switch {
		case err != nil && (a.ioErr == nil || a.ioErr.Error() != err.Error()):
			available.Set(0)
			a.log.Error().Err(err).Msg("l3 redis unavailable: serving from L1 and L2; retried on later lookups")
		case err == nil && a.ioErr != nil:
			available.Set(1)
			a.log.Info().Msg("l3 redis available again")
		}
		a.ioErr = err
		return
	}
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
		var c Counters
		st.Entries, st.Capacity, c = a.store.stats()
		st.Hits, st.Misses, st.Evictions, st.Expired = c.Hits, c.Misses, c.Evictions, c.Expired
	}
	st.Misses += a.unserved
	return st
}

// syncMetrics adds what the core counted since the last message to the
// Prometheus counters. A new store counts from zero (a restarted memory
// tier, a reopened L3), and so does the meter of a new incarnation. A
// Front syncs its own counters, on every operation.
func (a *Actor) syncMetrics() {
	switch {
	case a.d.Front != nil:
	case a.store == nil:
		a.meter.sync(0, a.meter.synced)
	default:
		n, _, c := a.store.stats()
		a.meter.sync(n, c)
	}
}
