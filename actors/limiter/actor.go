package limiter

import (
	"container/heap"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/messages"
)

// Deps is what limiter/UPSTREAM is built from.
type Deps struct {
	Name     string // SPEC §6 name, "limiter/UPSTREAM"
	Upstream string
	Live     *conf.Live
	Clock    clock.Clock
	Log      zerolog.Logger
	Metrics  *metrics.Set
	// Reservoir, when set, is filled with tokens ahead of demand for
	// workers to take without a message (see Reservoir).
	Reservoir *Reservoir
	// Shared, when set, makes the rate a cluster-wide budget leased from
	// Redis (cluster.go); nil on a single node.
	Shared *Shared
}

// memo is what one incarnation hands the next across a restart (SPEC §6:
// the learned rate survives a crash, and so do the callers waiting).
type memo struct {
	bucket           Bucket
	budget           Budget
	waiting          waitQueue
	seq              uint64
	granted          uint64
	retries, refused uint64
}

// Props builds limiter/UPSTREAM. The props carry the limiter's memo, so an
// actor restarted (or re-spawned) from them resumes at the rate it learned.
func Props(d Deps) *actor.Props {
	admin.Defaults(&d.Clock, &d.Metrics, &d.Live)
	saved := &atomic.Pointer[memo]{}
	return actor.PropsFromProducer(func() actor.Actor {
		a := &Actor{d: d, saved: saved}
		a.answers = admin.New(d.Name, a.status, a.stats, a.apply)
		return a
	})
}

var _ actor.Actor = (*Actor)(nil)

// Actor is limiter/UPSTREAM. Its state is touched only on its own goroutine.
type Actor struct {
	answers *admin.Answers // the admin messages (status, stats, config, ping), built by Props
	d       Deps
	saved   *atomic.Pointer[memo]
	log     zerolog.Logger
	system  *actor.ActorSystem
	self    *actor.PID

	bucket           *Bucket
	budget           *Budget
	enabled          bool // enable_advanced_optimization: off grants every request at once, refuses every retry
	waiting          waitQueue
	seq              uint64
	granted          uint64
	retries, refused uint64 // retries let in, refused by the budget

	alarm clock.Alarm // wakes the limiter when the head waiter's tokens are due
	sh    *shared     // the cluster side; nil on a single node

	mRate, mWaiting      *metrics.Gauge
	mGranted, mThrottled *metrics.Counter
	mRetries, mRefused   *metrics.Counter
}

// tick wakes the limiter when the head waiter's tokens are due; gen drops
// ticks of timers that were replaced.
type tick struct{ gen uint64 }

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	if a.answers.Handle(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *messages.AcquireToken:
		a.acquire(ctx, msg)
	case *messages.CancelToken:
		if a.waiting.remove(msg.ID) {
			a.drain(ctx)
		}
	case *messages.ReportOutcome:
		a.observe(ctx, msg)
	case *tick:
		if a.alarm.Fired(msg.gen) {
			a.drain(ctx)
		}
	case *leased:
		a.onLeased(ctx, msg)
	case *leaseTick:
		if a.sh.leaseAlarm.Fired(msg.gen) {
			a.lease(ctx, a.need())
		}
	case *reportTick:
		if a.sh.reportAlarm.Fired(msg.gen) {
			a.onReport(ctx)
		}
	case *messages.RetryBudgetQuery:
		admin.Respond(ctx, a.budgetReport())
	case *actor.Stopping:
		a.stopAlarms()
		a.save(false)
	case *actor.Restarting:
		a.stopAlarms()
		a.save(true)
	case *actor.Stopped:
	default:
		a.log.Debug().Str("type", fmt.Sprintf("%T", msg)).Msg("unknown message")
	}
}

func (a *Actor) start(ctx actor.Context) {
	a.system, a.self = ctx.ActorSystem(), ctx.Self()
	a.log = a.d.Log.With().Str("actor", a.d.Name).Logger()
	up := metricname.Labels("upstream", a.d.Upstream)
	a.mRate = a.d.Metrics.GetOrCreateGauge("deer_ratelimit_rate"+up, nil)
	a.mWaiting = a.d.Metrics.GetOrCreateGauge("deer_ratelimit_waiting"+up, nil)
	a.mGranted = a.d.Metrics.GetOrCreateCounter("deer_ratelimit_granted_total" + up)
	a.mThrottled = a.d.Metrics.GetOrCreateCounter("deer_ratelimit_throttled_total" + up)
	a.mRetries = a.d.Metrics.GetOrCreateCounter("deer_retries_total" + up)
	a.mRefused = a.d.Metrics.GetOrCreateCounter("deer_retry_budget_refused_total" + up)

	cfg, now := a.d.Live.Load(), a.d.Clock.Now()
	a.enabled = cfg.EnableAdvancedOptimization
	settings := SettingsFrom(cfg.RateLimitFor(a.d.Upstream))
	if m := a.saved.Swap(nil); m != nil {
		b, bg := m.bucket, m.budget
		a.bucket, a.budget = &b, &bg
		a.waiting, a.seq, a.granted = m.waiting, m.seq, m.granted
		a.retries, a.refused = m.retries, m.refused
		a.logChange(a.bucket.Configure(now, settings))
		a.budget.SetWindow(now, settings.Window)
		a.log.Info().Float64("rate", a.bucket.Rate()).Int("waiting", a.waiting.Len()).Msg("rate limiter resumed")
	} else {
		a.bucket, a.budget = NewBucket(now, settings), NewBudget(settings.Window)
	}
	if a.d.Shared != nil {
		up := metricname.Labels("upstream", a.d.Upstream)
		// A restarted limiter starts with no lease: it asks for one on
		// the first demand, and reports at once to learn the shared rate.
		a.sh = a.newShared(up)
		a.lease(ctx, 0)
	}
	a.drain(ctx)
}

func (a *Actor) stopAlarms() {
	a.alarm.Stop()
	if a.sh != nil {
		a.sh.leaseAlarm.Stop()
		a.sh.reportAlarm.Stop()
	}
}

// save leaves the state for the next incarnation. Waiters are kept only
// across a restart: after a stop nobody would answer them.
func (a *Actor) save(withWaiters bool) {
	if a.bucket == nil {
		return
	}
	m := &memo{bucket: *a.bucket, budget: *a.budget, seq: a.seq, granted: a.granted, retries: a.retries, refused: a.refused}
	if withWaiters {
		m.waiting = a.waiting
	}
	a.saved.Store(m)
}

func (a *Actor) acquire(ctx actor.Context, msg *messages.AcquireToken) {
	to := admin.ReplyTo(ctx, msg.ReplyTo)
	if to == nil {
		a.log.Debug().Uint64("id", msg.ID).Msg("AcquireToken without sender or reply-to dropped")
		return
	}
	n := max(msg.Count, 1)
	now := a.d.Clock.Now()
	switch {
	case !msg.Retry:
		a.budget.Request(now, n)
	case !a.enabled:
		ctx.Send(to, &messages.RetryRefused{ID: msg.ID, Reason: messages.RetryRecoveryDisabled})
		return
	case !a.budget.Retry(now, n):
		a.refused += uint64(n)
		a.mRefused.Add(n)
		ctx.Send(to, &messages.RetryRefused{ID: msg.ID, Reason: messages.RetryBudgetExhausted})
		return
	default:
		a.retries += uint64(n)
		a.mRetries.Add(n)
	}
	if !a.enabled || (a.waiting.Len() == 0 && a.allow(ctx, now, n)) {
		a.grant(ctx, to, msg.ID, n)
		return
	}
	a.seq++
	heap.Push(&a.waiting, &waiter{id: msg.ID, priority: msg.Priority, count: n, seq: a.seq, replyTo: to})
	a.drain(ctx)
}

func (a *Actor) grant(ctx actor.Context, to *actor.PID, id uint64, n int) {
	a.granted += uint64(n)
	a.mGranted.Add(n)
	ctx.Send(to, &messages.TokenGranted{ID: id, Count: n})
}

// drain grants waiters in order while the bucket allows, then sets one
// timer for the moment the head waiter's tokens are due.
func (a *Actor) drain(ctx actor.Context) {
	now := a.d.Clock.Now()
	for a.waiting.Len() > 0 {
		head := a.waiting[0]
		if a.enabled && !a.allow(ctx, now, head.count) {
			break
		}
		heap.Pop(&a.waiting)
		a.grant(ctx, head.replyTo, head.id, head.count)
	}
	a.mWaiting.Set(float64(a.waiting.Len()))
	a.mRate.Set(a.bucket.Rate())
	if a.waiting.Len() == 0 {
		a.alarm.Stop()
		a.topUp(ctx, now)
		return
	}
	if a.clustered() {
		a.alarm.Stop() // the lease's answer (or its leaseTick) drains again
		return
	}
	due := now.Add(a.bucket.Wait(now, a.waiting[0].count))
	system, self := a.system, a.self
	a.alarm.Set(a.d.Clock, due, func(gen uint64) { system.Root.Send(self, &tick{gen: gen}) })
}

// topUp counts the tokens workers took from the reservoir (as granted
// first attempts) and fills it again from the bucket. Only tokens the
// bucket has are moved: a refused Allow would read as demand.
func (a *Actor) topUp(ctx actor.Context, now time.Time) {
	r := a.d.Reservoir
	if r == nil {
		return
	}
	taken := r.collect()
	if taken > 0 {
		a.granted += taken
		a.mGranted.Add(int(taken))
		a.budget.Request(now, int(taken))
	}
	if !a.enabled || now.Before(a.bucket.PausedUntil()) {
		r.empty()
		return
	}
	if a.clustered() {
		// Only leased tokens go in, and a lease is asked for only when
		// workers took tokens since the last look: a node without demand
		// must not spend the cluster's budget.
		want := reservoirSize(a.sh.rate, a.bucket.Settings().Burst) - r.Len()
		for ; want > 0 && a.sh.stock > 0 && now.Before(a.sh.stockUntil); want-- {
			a.sh.stock--
			r.put(1)
		}
		if want > 0 && taken > 0 {
			a.sh.demand = 1
			a.lease(ctx, 1)
		}
		return
	}
	want := reservoirSize(a.bucket.Rate(), a.bucket.Settings().Burst) - r.Len()
	for ; want > 0 && a.bucket.Tokens(now) >= 1 && a.bucket.Allow(now, 1); want-- {
		r.put(1)
	}
}

func (a *Actor) observe(ctx actor.Context, msg *messages.ReportOutcome) {
	if !a.enabled {
		return
	}
	o := Outcome{Status: msg.Status, Overload: msg.Overload, RetryAfter: msg.RetryAfter}
	if o.Throttled() {
		a.mThrottled.Inc()
	}
	if a.clustered() {
		if o.Throttled() || o.RetryAfter > 0 {
			a.d.Reservoir.empty()
		}
		a.observeShared(ctx, o)
		if a.waiting.Len() == 0 {
			// As below: the reservoir refills from the leased stock on
			// every report, or workers would find it empty and ask.
			a.topUp(ctx, a.d.Clock.Now())
		}
		return
	}
	if o.Throttled() || o.RetryAfter > 0 {
		a.d.Reservoir.empty() // tokens taken at the old rate must not outlive the throttle
	}
	now := a.d.Clock.Now()
	change, changed := a.bucket.Observe(now, o)
	a.logChange(change, changed)
	if changed || o.RetryAfter > 0 {
		a.drain(ctx) // the head's due time moved
		return
	}
	if a.waiting.Len() == 0 {
		a.topUp(ctx, now)
	}
}

func (a *Actor) logChange(c Change, changed bool) {
	if !changed {
		return
	}
	a.mRate.Set(c.To)
	ev := a.log.Info()
	switch c.Reason {
	case "throttled", "recover", "probe", "demand":
		// The adaptation moves the rate several times a second while it
		// probes the capacity: detail for debugging, not for the log at
		// large (deer_ratelimit_rate and _throttled_total tell the story).
		ev = a.log.Debug()
	}
	ev.Float64("from", c.From).Float64("to", c.To).Str("reason", c.Reason).Msg("rate adjusted")
}

func (a *Actor) apply(ctx actor.Context, cfg *conf.Config) {
	if a.enabled != cfg.EnableAdvancedOptimization {
		a.enabled = cfg.EnableAdvancedOptimization
		a.log.Info().Bool("enabled", a.enabled).Msg("rate limiter switched by enable_advanced_optimization")
	}
	if s := SettingsFrom(cfg.RateLimitFor(a.d.Upstream)); s != a.bucket.Settings() {
		a.d.Reservoir.empty() // refilled below at the new rate
		now := a.d.Clock.Now()
		a.logChange(a.bucket.Configure(now, s))
		a.budget.SetWindow(now, s.Window)
		if a.sh != nil && a.sh.pilot {
			a.sh.newRate = a.bucket.Rate() // the cluster follows its pilot's configuration
		}
	}
	a.drain(ctx) // disabled: everyone waiting goes now; otherwise the due time may have moved
}

func (a *Actor) status() *messages.StatusReport {
	r := &messages.StatusReport{Actor: a.d.Name, State: messages.StateHealthy}
	now := a.d.Clock.Now()
	switch {
	case !a.enabled:
		r.State, r.Detail = messages.StateDisabled, "enable_advanced_optimization is false"
	case now.Before(a.bucket.PausedUntil()):
		r.State = messages.StateDegraded
		r.Detail = fmt.Sprintf("paused by the upstream's Retry-After for %s", a.bucket.PausedUntil().Sub(now).Round(time.Millisecond))
	case a.sh != nil && a.sh.fallback:
		r.State = messages.StateDegraded
		r.Detail = fmt.Sprintf("redis unreachable: limiting locally at %s req/s = shared rate %s / %d nodes alive",
			strconv.FormatFloat(a.sh.localRate, 'f', -1, 64), strconv.FormatFloat(a.sh.rate, 'f', -1, 64), a.sh.nodesAlive)
	}
	return r
}

func (a *Actor) stats() *messages.LimiterStats {
	now := a.d.Clock.Now()
	s, bs := a.bucket.Settings(), a.bucket.Stats()
	var paused float64
	if until := a.bucket.PausedUntil(); now.Before(until) {
		paused = until.Sub(now).Seconds()
	}
	return &messages.LimiterStats{
		Upstream:       a.d.Upstream,
		Enabled:        a.enabled,
		CurrentRate:    a.bucket.Rate(),
		MinRate:        s.MinRate,
		MaxRate:        s.MaxRate,
		Burst:          s.Burst,
		Tokens:         a.bucket.Tokens(now),
		Granted:        a.granted,
		Waiting:        a.waiting.Len(),
		Throttles:      bs.Throttles,
		Increases:      bs.Increases,
		Decreases:      bs.Decreases,
		PausedFor:      paused,
		Retries:        a.retries,
		RetriesRefused: a.refused,
		Cluster:        a.clusterStats(),
	}
}

func (a *Actor) budgetReport() *messages.RetryBudgetReport {
	now := a.d.Clock.Now()
	requests, retries := a.budget.Counts(now)
	r := &messages.RetryBudgetReport{
		Upstream: a.d.Upstream, Window: a.budget.Window().Seconds(),
		Requests: requests, Retries: retries, Available: a.budget.Available(now),
		RetriesTotal: a.retries, RetriesRefused: a.refused,
	}
	if !a.enabled {
		r.Available = 0
	}
	return r
}
