package pool

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
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

// Deps is what pool/UPSTREAM is built from.
type Deps struct {
	Name     string // SPEC §6 name, "pool/UPSTREAM"
	Upstream string // key in Config.Upstreams
	Live     *conf.Live
	Clock    clock.Clock
	Log      zerolog.Logger
	Metrics  *metrics.Set
	// RoundTripper, when set, carries the calls instead of the pool's own
	// transport (an embedder's instrumented or in-memory transport); lease
	// accounting is unchanged, and no connections are warmed.
	RoundTripper http.RoundTripper
	// Published, when set, receives the pool's numbers at most every 50 ms
	// for /metrics to read when the pool is too busy to answer.
	Published *Published
	// Lane, when set, is lent the capacity the ledger does not use, for
	// workers to lease without a message (single-endpoint upstreams only).
	// It outlives restarts, as the leases taken from it do.
	Lane *Lane
	// KeyMissing, when not empty, is the upstream's api_key_env variable,
	// unset at start: the pool opens no connections ahead of demand (no
	// dial to a provider that would refuse every call; deer refuses its
	// tasks at submission) and reports itself disabled, saying why.
	KeyMissing string
}

// Props builds pool/UPSTREAM. Each incarnation (first start and every
// restart) gets a fresh lease-id range, so that releases addressed to a
// previous incarnation's leases are ignored rather than misapplied.
func Props(d Deps) *actor.Props {
	admin.Defaults(&d.Clock, &d.Metrics, &d.Live)
	var incarnation atomic.Uint64
	return actor.PropsFromProducer(func() actor.Actor {
		a := &Actor{d: d, idBase: incarnation.Add(1) << 40}
		a.answers = admin.New(d.Name, a.status, a.stats, a.apply)
		return a
	})
}

var _ actor.Actor = (*Actor)(nil)

// Actor is pool/UPSTREAM. Its state is touched only on its own goroutine,
// except dial (atomics written by the transport's dialer).
type Actor struct {
	answers *admin.Answers // the admin messages (status, stats, config, ping), built by Props
	d       Deps
	log     zerolog.Logger
	system  *actor.ActorSystem
	self    *actor.PID
	idBase  uint64

	cp            conf.ConnectionPool
	upstream      conf.Upstream
	hasUpstream   bool
	workerTimeout time.Duration
	highUtil      float64
	balance       bool     // load_balancing over the upstream's endpoints
	endpoints     []string // upstream.EndpointURLs(), set with it by settle

	leases    *Leases
	lent      int  // slots lent to d.Lane: its free plus its out
	stopping  bool // after Stopping or Restarting: lend nothing more
	gen       uint64
	transport *http.Transport
	client    *http.Client
	retired   map[uint64]*http.Transport // older transports with leases still out
	dial      dialCounters

	warmCancel context.CancelFunc
	warmWG     sync.WaitGroup
	warmConns  int

	reclaimTimer clock.Timer
	timerGen     uint64
	degraded     bool
	lastPublish  time.Time // when stats were last copied to d.Published

	mActive, mMax, mWaiting *metrics.Gauge
	mAcquired, mReclaimed   *metrics.Counter
}

// reclaimTick wakes the actor when the oldest lease may have outlived
// worker_timeout; gen drops ticks from timers that were replaced.
type reclaimTick struct{ gen uint64 }

// laneNudge: a lane slot came back while the lane was closed.
type laneNudge struct{}

// warmDone carries a warm-up's result back from its goroutine.
type warmDone struct {
	gen    uint64
	opened int
	err    error
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	if a.answers.Handle(ctx) {
		return
	}
	defer a.balanceLane(ctx)
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *laneNudge:
	case *messages.AcquireConnection:
		a.acquire(ctx, msg)
	case *messages.ReleaseConnection:
		lease, ok, granted := a.leases.Release(a.d.Clock.Now(), msg.LeaseID)
		if ok {
			a.retire(lease.Gen)
		}
		a.deliver(ctx, granted)
		a.changed()
	case *messages.CancelAcquire:
		if msg.Owner != nil {
			granted := a.leases.Cancel(a.d.Clock.Now(), ownerKey(msg.Owner), msg.Ref)
			a.deliver(ctx, granted)
			a.changed()
		}
	case *reclaimTick:
		if msg.gen == a.timerGen {
			a.reclaimTimer = nil
			a.reclaim(ctx)
		}
	case *warmDone:
		a.warmed(msg)
	case *actor.Stopping, *actor.Restarting:
		a.shutdown()
	case *actor.Stopped:
	default:
		a.log.Debug().Str("type", fmt.Sprintf("%T", msg)).Msg("unknown message")
	}
}

func (a *Actor) start(ctx actor.Context) {
	a.system, a.self = ctx.ActorSystem(), ctx.Self()
	a.log = a.d.Log.With().Str("actor", a.d.Name).Logger()
	up := metricname.Labels("upstream", a.d.Upstream)
	if l := a.d.Lane; l != nil {
		// Lane leases come and go without a message: the gauge reads them
		// when scraped.
		a.mActive = a.d.Metrics.GetOrCreateGauge("deer_pool_active_connections"+up, func() float64 {
			return float64(l.ledger.Load() + l.out.Load())
		})
	} else {
		a.mActive = a.d.Metrics.GetOrCreateGauge("deer_pool_active_connections"+up, nil)
	}
	a.mMax = a.d.Metrics.GetOrCreateGauge("deer_pool_max_connections"+up, nil)
	a.mWaiting = a.d.Metrics.GetOrCreateGauge("deer_pool_waiting"+up, nil)
	a.mAcquired = a.d.Metrics.GetOrCreateCounter("deer_pool_acquired_total" + up)
	a.mReclaimed = a.d.Metrics.GetOrCreateCounter("deer_pool_reclaimed_total" + up)
	a.retired = map[uint64]*http.Transport{}

	cfg := a.d.Live.Load()
	a.leases = NewLeases(cfg.ConnectionPool.MaxConnections, a.idBase)
	if l := a.d.Lane; l != nil {
		// A restart finds the lane as the last incarnation left it: its free
		// slots come back; those still out (or returned since) stay lent.
		l.close()
		a.lent = int(l.out.Load() + l.free.Load())
		system, self := a.system, a.self
		nudge := func() { system.Root.Send(self, &laneNudge{}) }
		l.nudge.Store(&nudge)
		a.leases.SetMax(a.d.Clock.Now(), cfg.ConnectionPool.MaxConnections-a.lent)
	}
	a.settle(cfg)
	a.cp = cfg.ConnectionPool
	a.rebuild()
	a.changed()
}

// settle takes the settings that need no new transport.
func (a *Actor) settle(cfg *conf.Config) {
	a.upstream, a.hasUpstream = cfg.Upstreams[a.d.Upstream]
	a.endpoints = a.upstream.EndpointURLs()
	a.workerTimeout = conf.Seconds(cfg.ParallelExecution.WorkerTimeout)
	a.highUtil = cfg.Monitoring.HighUtilizationThreshold
	a.balance = cfg.EnableAdvancedOptimization && cfg.ParallelExecution.LoadBalancing
}

// rebuild replaces the transport with one built from a.cp and warms it.
// The old transport's idle connections close now; connections busy with
// calls in flight close when their last lease comes back (see retire).
func (a *Actor) rebuild() {
	a.stopWarm() // first: a warm-up finishing later would park connections in the old transport
	if old := a.transport; old != nil {
		old.CloseIdleConnections()
		if a.leases.ActiveOn(a.gen) > 0 || a.d.Lane.InUse() > 0 {
			a.retired[a.gen] = old
		}
	}
	a.gen++
	a.leases.SetGen(a.gen)
	a.transport = newTransport(a.cp, a.hasUpstream && isHTTPS(a.endpoints), &a.dial)
	var rt http.RoundTripper = a.transport
	if a.d.RoundTripper != nil {
		rt = a.d.RoundTripper
	}
	a.client = &http.Client{
		Transport: rt,
		// deer relays what the upstream answered, redirects included.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	a.warmConns = 0

	n := min(a.cp.InitialConnections, a.cp.MaxConnections)
	if !a.hasUpstream || a.upstream.BaseURL == "" || n <= 0 || a.d.RoundTripper != nil || a.d.KeyMissing != "" {
		return
	}
	// Bounded so that a hanging upstream cannot keep warm-up calls open.
	limit := conf.Seconds(a.cp.ConnectionTimeout) * time.Duration(a.cp.MaxRetries+2)
	wctx, cancel := context.WithTimeout(context.Background(), limit)
	a.warmCancel = cancel
	gen, t, base, system, self := a.gen, a.transport, a.upstream.BaseURL, a.system, a.self
	a.warmWG.Add(1)
	go func() {
		defer a.warmWG.Done()
		defer cancel()
		opened, err := warm(wctx, t, base, n)
		system.Root.Send(self, &warmDone{gen: gen, opened: opened, err: err})
	}()
}

func (a *Actor) warmed(msg *warmDone) {
	if msg.gen != a.gen {
		return
	}
	a.warmConns = msg.opened
	if msg.err != nil {
		// A builtin simulator may not listen yet at startup: not an error
		// worth more than debug; the first task dials on demand.
		a.log.Debug().Err(msg.err).Int("opened", msg.opened).Msg("connection warm-up incomplete")
		return
	}
	a.log.Debug().Int("opened", msg.opened).Msg("connections warmed")
}

func (a *Actor) stopWarm() {
	if a.warmCancel != nil {
		a.warmCancel()
		a.warmCancel = nil
	}
	// Cancelled warm-up calls return at once; waiting keeps their
	// connections from landing in a transport after it was closed.
	a.warmWG.Wait()
}

func (a *Actor) acquire(ctx actor.Context, msg *messages.AcquireConnection) {
	owner := admin.ReplyTo(ctx, msg.ReplyTo)
	if owner == nil {
		a.log.Debug().Uint64("ref", msg.Ref).Msg("AcquireConnection without sender or reply-to dropped")
		return
	}
	req := Request{Owner: ownerKey(owner), Ref: msg.Ref, Tag: owner, Endpoints: msg.Endpoints}
	if lease, ok := a.leases.Acquire(a.d.Clock.Now(), req); ok {
		a.deliver(ctx, []Lease{lease})
	}
	a.changed()
}

func (a *Actor) deliver(ctx actor.Context, granted []Lease) {
	for _, l := range granted {
		a.mAcquired.Inc()
		ep := a.pickEndpoint(l.Req.Endpoints)
		a.leases.SetEndpoint(l.ID, ep)
		if pid, _ := l.Req.Tag.(*actor.PID); pid != nil {
			ctx.Send(pid, &messages.ConnectionLeased{
				Ref: l.Req.Ref, LeaseID: l.ID, Client: a.client, Endpoint: ep,
			})
		}
	}
}

// pickEndpoint chooses where the next call goes: with load balancing, the
// endpoint with the fewest calls in flight (the first listed on a tie);
// without, the first (base_url unless it is excluded).
// allowed, when not empty, restricts the choice (endpoints whose breaker is
// open are left out by the caller); the first allowed one is used without
// load balancing.
func (a *Actor) pickEndpoint(allowed []string) string {
	eps := a.endpoints
	if len(allowed) > 0 {
		eps = allowed
	}
	if len(eps) == 1 || !a.balance {
		return eps[0]
	}
	load := a.leases.InFlight()
	best := eps[0]
	for _, ep := range eps[1:] {
		if load[ep] < load[best] {
			best = ep
		}
	}
	return best
}

// retire closes an old transport's connections once its last lease is back.
func (a *Actor) retire(gen uint64) {
	if t, ok := a.retired[gen]; ok && a.leases.ActiveOn(gen) == 0 && a.d.Lane.InUse() == 0 {
		t.CloseIdleConnections()
		delete(a.retired, gen)
	}
}

func (a *Actor) reclaim(ctx actor.Context) {
	reclaimed, granted := a.leases.Reclaim(a.d.Clock.Now(), a.workerTimeout)
	for _, l := range reclaimed {
		a.mReclaimed.Inc()
		a.retire(l.Gen)
		a.log.Warn().Uint64("lease", l.ID).Time("since", l.Since).Msg("lease reclaimed after worker_timeout")
	}
	a.deliver(ctx, granted)
	a.changed()
}

// changed refreshes gauges, the degraded flag and the reclaim timer after
// any change to the leases.
func (a *Actor) changed() {
	if l := a.d.Lane; l != nil {
		l.ledger.Store(int64(a.leases.Stats().Active))
	} else {
		a.mActive.Set(float64(a.leases.Stats().Active))
	}
	st := a.laneStats()
	a.mMax.Set(float64(st.Max))
	a.mWaiting.Set(float64(st.Waiting))

	over := st.Utilization() > a.highUtil
	if over && !a.degraded {
		a.log.Warn().Int("active", st.Active).Int("max", st.Max).Float64("threshold", a.highUtil).
			Msg("connection pool utilization above high_utilization_threshold")
	} else if !over && a.degraded {
		a.log.Info().Int("active", st.Active).Int("max", st.Max).Msg("connection pool utilization back to normal")
	}
	a.degraded = over
	if a.d.Published != nil {
		if now := a.d.Clock.Now(); now.Sub(a.lastPublish) >= publishEvery {
			a.d.Published.store(a.stats())
			a.lastPublish = now
		}
	}

	if a.reclaimTimer == nil && a.workerTimeout > 0 {
		if oldest, ok := a.leases.Oldest(); ok {
			a.timerGen++
			gen, system, self := a.timerGen, a.system, a.self
			wait := oldest.Add(a.workerTimeout).Sub(a.d.Clock.Now())
			a.reclaimTimer = a.d.Clock.AfterFunc(wait, func() { system.Root.Send(self, &reclaimTick{gen: gen}) })
		}
	}
}

func (a *Actor) apply(ctx actor.Context, cfg *conf.Config) {
	oldEndpoints, oldHas, oldTimeout := a.endpoints, a.hasUpstream, a.workerTimeout
	a.settle(cfg)
	upChanged := oldHas != a.hasUpstream || !slices.Equal(oldEndpoints, a.endpoints)
	if cfg.ConnectionPool != a.cp || upChanged {
		a.log.Info().Interface("connection_pool", cfg.ConnectionPool).Msg("connection pool settings applied: new transport")
		a.cp = cfg.ConnectionPool
		a.rebuild()
	}
	a.deliver(ctx, a.leases.SetMax(a.d.Clock.Now(), a.cp.MaxConnections-a.lent))
	if a.workerTimeout != oldTimeout && a.reclaimTimer != nil {
		// Re-arm for the new timeout; the stale tick is dropped by gen.
		a.reclaimTimer.Stop()
		a.reclaimTimer = nil
	}
	a.changed()
	a.balanceLane(ctx)
}

// balanceLane runs after every message: it lends the lane the capacity the
// ledger does not use, keeping one slot free in the ledger (so that it can
// grant at once when the lane runs dry); or, while a request waits in the
// ledger or the lent slots reach max_connections (lowered live), it closes
// the lane and takes back the slots that are free.
func (a *Actor) balanceLane(ctx actor.Context) {
	l := a.d.Lane
	if l == nil || a.leases == nil || a.stopping {
		return
	}
	if len(a.retired) > 0 && l.InUse() == 0 {
		for gen := range a.retired { // lane leases may have held old transports
			a.retire(gen)
		}
	}
	now := a.d.Clock.Now()
	endpoint, usable := a.laneEndpoint()
	st := a.leases.Stats()
	if !usable || st.Waiting > 0 || a.lent >= a.cp.MaxConnections {
		a.lent -= l.close()
		a.deliver(ctx, a.leases.SetMax(now, a.cp.MaxConnections-a.lent))
		a.changed()
		return
	}
	if spare := a.cp.MaxConnections - 1 - st.Active - a.lent; spare > 0 {
		a.lent += spare
		a.leases.SetMax(now, a.cp.MaxConnections-a.lent)
		l.free.Add(int64(spare))
	}
	l.open(endpoint, a.client)
}

// laneEndpoint is the endpoint lane leases go to: the upstream's only one.
func (a *Actor) laneEndpoint() (string, bool) {
	if !a.hasUpstream || len(a.endpoints) != 1 || a.client == nil {
		return "", false
	}
	return a.endpoints[0], true
}

func (a *Actor) status() *messages.StatusReport {
	r := &messages.StatusReport{Actor: a.d.Name, State: messages.StateHealthy}
	st := a.laneStats()
	switch {
	case !a.hasUpstream:
		r.State, r.Detail = messages.StateDegraded, fmt.Sprintf("upstream %q is not configured", a.d.Upstream)
	case a.d.KeyMissing != "":
		// Switched off by configuration, not failing: /health stays
		// healthy and names the variable (see report's Disabled).
		r.State = messages.StateDisabled
		r.Detail = fmt.Sprintf("upstream %s needs %s, which is not set: not warmed, its calls are refused", a.d.Upstream, a.d.KeyMissing)
	case a.degraded:
		r.State = messages.StateDegraded
		r.Detail = fmt.Sprintf("utilization %.2f (%d/%d connections, %d waiting) above high_utilization_threshold %.2f",
			st.Utilization(), st.Active, st.Max, st.Waiting, a.highUtil)
	}
	return r
}

// laneStats are the ledger's numbers with the lane's leases added in: the
// ledger's max leaves out what it lent.
func (a *Actor) laneStats() LeaseStats {
	st := a.leases.Stats()
	if l := a.d.Lane; l != nil {
		out := int(l.out.Load())
		taken := l.taken.Load()
		st.Active += out
		st.Max += a.lent
		st.Acquired += taken
		st.Released += taken - uint64(out)
		st.Peak = max(st.Peak, st.Active, int(l.peak.Load()))
	}
	return st
}

func (a *Actor) stats() *messages.PoolStats {
	st := a.laneStats()
	return &messages.PoolStats{
		Upstream:          a.d.Upstream,
		ActiveConnections: st.Active,
		MaxConnections:    st.Max,
		Utilization:       st.Utilization(),
		TotalAcquired:     st.Acquired,
		LaneAcquired:      a.d.Lane.Taken(),
		TotalReleased:     st.Released,
		PeakUsage:         st.Peak,
		Reclaimed:         st.Reclaimed,
		Waiting:           st.Waiting,
		IdleTimeout:       a.cp.IdleTimeout,
		DialTimeout:       a.cp.ConnectionTimeout,
		DialRetries:       a.cp.MaxRetries,
		DialRetriesUsed:   a.dial.retries.Load(),
		DialFailures:      a.dial.failures.Load(),
		WarmConnections:   a.warmConns,
	}
}

// shutdown runs on Stopping and Restarting: nothing of this incarnation may
// outlive it (timers, warm-up goroutines, idle connections). Calls in flight
// keep their connections until they finish.
func (a *Actor) shutdown() {
	if a.leases == nil {
		return // never started
	}
	a.stopping = true
	if a.reclaimTimer != nil {
		a.reclaimTimer.Stop()
		a.reclaimTimer = nil
	}
	a.timerGen++
	a.stopWarm()
	a.transport.CloseIdleConnections()
	for gen, t := range a.retired {
		t.CloseIdleConnections()
		delete(a.retired, gen)
	}
}

func ownerKey(pid *actor.PID) string { return pid.Address + "/" + pid.Id }
