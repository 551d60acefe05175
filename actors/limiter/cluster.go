package limiter

import (
	"context"
	"math"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/redis/go-redis/v9"

	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/messages"
)

// Shared makes the limiter one node's share of a cluster-wide budget
// (cluster.redis_url; docs/cluster.md, "Global rate limit"). The rate in
// rate_limit is then the cluster's: every node leases slices of tokens
// from one GCRA in Redis (cluster.Lease), and one node at a time, the
// pilot, adapts the shared rate to the 429s and acceptances of all.
type Shared struct {
	Redis redis.Scripter
	Node  cluster.View
}

// The cluster side's constants.
const (
	// sliceSeconds: a lease asks for this much of the shared rate (and the
	// cluster's burst tolerance is at least that), so at
	// 1,000 req/s a node calls Redis about 20 times a second (0.02 round
	// trips per call), and at 200 req/s shared by three nodes one slice is
	// 10 tokens, small against the ±5% the budget is held to.
	sliceSeconds = 0.05
	// leaseLife: leased tokens not used within it are dropped. They were
	// spent from the shared budget; holding them longer would let a node
	// burst on old budget after others took the rest.
	leaseLife = 250 * time.Millisecond
	// reportEvery: a node with outcomes to report, and the pilot (which
	// renews its role and adapts), call at least this often.
	reportEvery = 100 * time.Millisecond
	// pilotTTL: a pilot silent this long (dead, or cut off from Redis)
	// hands the role to the next node that calls.
	pilotTTL = 3 * time.Second
	// retryRedis: how long after a failed call a node in fallback tries
	// Redis again.
	retryRedis = time.Second
	// leaseGap: after a lease that got less than it asked for, the node
	// waits this long (or until the next token is due, if later) before it
	// asks again, so that nodes short of budget do not poll Redis in a
	// loop for a token each: the budget accrues while they wait.
	leaseGap = 20 * time.Millisecond
	// redisTimeout bounds one lease call.
	redisTimeout = 500 * time.Millisecond
)

// shared is the limiter's cluster state, touched only on its goroutine.
type shared struct {
	d *Shared

	stock      int       // leased tokens on hand
	refund     int       // leased tokens dropped unused, given back with the next call
	stockUntil time.Time // when they lapse
	leasing    bool      // a lease call is out
	nextLease  time.Time // no call for tokens before it (leaseGap)
	asked      int       // tokens the call out asked for
	again      bool      // a reason to call came while one was out

	// Outcomes since the last call, for the pilot.
	accepted, throttled, demand int

	rate       float64 // the shared rate, as last read
	pilot      bool
	newRate    float64 // the pilot's decision, sent with its next call
	fallback   bool    // Redis unreachable: the local bucket runs at rate/alive
	localRate  float64
	leased     uint64
	calls      uint64
	errors     uint64
	nodesAlive int

	mLeased, mCalls, mErrors *metrics.Counter

	leaseAlarm  clock.Alarm // a refused lease asks again when a token is due
	reportAlarm clock.Alarm // the periodic report (and fallback's retry)
}

// leased is a lease call's answer, delivered to the limiter's mailbox.
type leased struct {
	res cluster.LeaseResult
	err error
}

// leaseTick and reportTick wake the limiter to call Redis.
type leaseTick struct{ gen uint64 }
type reportTick struct{ gen uint64 }

// clustered reports whether the shared budget decides grants now: cluster
// mode, limiting on, and Redis answering.
func (a *Actor) clustered() bool { return a.sh != nil && a.enabled && !a.sh.fallback }

// allow takes n tokens: from the leased stock in a cluster, from the
// bucket otherwise. A refusal in a cluster is demand: it asks for a lease.
func (a *Actor) allow(ctx actor.Context, now time.Time, n int) bool {
	if !a.clustered() {
		return a.bucket.Allow(now, n)
	}
	sh := a.sh
	if now.Before(a.bucket.PausedUntil()) {
		return false
	}
	if !now.Before(sh.stockUntil) {
		sh.drop()
	}
	if sh.stock >= n {
		sh.stock -= n
		return true
	}
	sh.demand = 1
	a.lease(ctx, n)
	return false
}

// lease calls Redis, unless a call is out (then once it is answered).
func (a *Actor) lease(ctx actor.Context, need int) {
	sh := a.sh
	if sh.leasing {
		sh.again = true
		return
	}
	now := a.d.Clock.Now()
	if need > 0 {
		// Paused by a Retry-After, or short of budget a moment ago: ask
		// when that ends, not in a loop.
		if at := later(sh.nextLease, a.bucket.PausedUntil()); now.Before(at) {
			a.leaseAt(at)
			return
		}
	}
	slice := int(math.Ceil(sh.rate * sliceSeconds))
	want := 0
	if need > 0 {
		want = max(need, slice)
	}
	s := a.bucket.Settings()
	req := cluster.LeaseRequest{
		Upstream: a.d.Upstream, Now: now, Want: want,
		Accepted: sh.accepted, Throttled: sh.throttled, Demand: sh.demand,
		// The GCRA's tolerance is burst_allowance, or a slice when that is
		// more: a slice must be grantable whole, or a node at 1,000 req/s
		// would call Redis once per burst_allowance calls.
		InitialRate: s.InitialRate, Burst: max(s.Burst, slice, need), PilotTTL: pilotTTL,
	}
	if sh.pilot {
		req.NewRate = sh.newRate
	}
	req.Refund, sh.refund = sh.refund, 0
	sh.accepted, sh.throttled, sh.demand = 0, 0, 0
	sh.leasing, sh.again, sh.asked = true, false, want
	sh.calls++
	sh.mCalls.Inc()
	system, self, rds, node := a.system, a.self, sh.d.Redis, sh.d.Node.NodeID()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), redisTimeout)
		defer cancel()
		res, err := cluster.Lease(c, rds, node, req)
		system.Root.Send(self, &leased{res: res, err: err})
	}()
}

// onLeased takes a lease call's answer.
func (a *Actor) onLeased(ctx actor.Context, msg *leased) {
	sh := a.sh
	sh.leasing = false
	now := a.d.Clock.Now()
	sh.nodesAlive = sh.d.Node.Alive()
	if msg.err != nil {
		sh.errors++
		sh.mErrors.Inc()
		if !sh.fallback {
			sh.fallback = true
			sh.stock, sh.refund, sh.pilot = 0, 0, false
			sh.localRate = sh.rate / float64(sh.nodesAlive)
			a.logChange(a.bucket.SetRate(now, sh.localRate))
			sh.localRate = a.bucket.Rate()
			a.log.Warn().Err(msg.err).Float64("local_rate", sh.localRate).Int("nodes_alive", sh.nodesAlive).
				Msg("redis unreachable: limiting locally at the shared rate divided by the nodes alive")
		}
		a.scheduleReport(retryRedis)
		a.drain(ctx)
		return
	}
	r := msg.res
	if sh.fallback {
		sh.fallback = false
		a.log.Info().Float64("shared_rate", r.Rate).Msg("redis is back: leasing from the cluster's budget again")
	}
	if r.Pilot && !sh.pilot {
		a.bucket.SetRate(now, r.Rate) // adapt from where the cluster is
	}
	sh.pilot, sh.rate = r.Pilot, r.Rate
	if sh.pilot {
		a.adapt(now, r)
	} else {
		a.bucket.SetRate(now, r.Rate)
	}
	a.mRate.Set(sh.rate)
	if r.Granted > 0 {
		if !now.Before(sh.stockUntil) {
			sh.drop()
		}
		sh.stock += r.Granted
		sh.stockUntil = now.Add(leaseLife)
		sh.leased += uint64(r.Granted)
		sh.mLeased.Add(r.Granted)
	}
	if r.Granted < sh.asked {
		sh.nextLease = now.Add(max(r.Wait, leaseGap))
	}
	a.drain(ctx)
	if sh.again || a.need() > 0 {
		a.lease(ctx, max(a.need(), 1))
	}
	a.scheduleReport(reportEvery)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// leaseAt asks for tokens at t.
func (a *Actor) leaseAt(t time.Time) {
	system, self := a.system, a.self
	a.sh.leaseAlarm.Set(a.d.Clock, t, func(gen uint64) {
		system.Root.Send(self, &leaseTick{gen: gen})
	})
}

// adapt runs the bucket's rules on the cluster's outcomes since the last
// report (the pilot's job) and keeps the result for the next call.
func (a *Actor) adapt(now time.Time, r cluster.LeaseResult) {
	if r.Demand > 0 {
		a.bucket.NoteDemand(now)
	}
	for range min(r.Throttled, 1000) {
		a.logChange(a.bucket.Observe(now, Outcome{Status: 429}))
	}
	for range min(r.Accepted, 100000) {
		a.logChange(a.bucket.Observe(now, Outcome{Status: 200}))
	}
	a.sh.newRate = a.bucket.Rate()
}

// need is how many tokens the head waiter wants (0: nobody waits).
func (a *Actor) need() int {
	if a.waiting.Len() == 0 {
		return 0
	}
	return a.waiting[0].count
}

func (a *Actor) scheduleReport(after time.Duration) {
	system, self := a.system, a.self
	a.sh.reportAlarm.Set(a.d.Clock, a.d.Clock.Now().Add(after), func(gen uint64) {
		system.Root.Send(self, &reportTick{gen: gen})
	})
}

// onReport calls Redis when there is something to say: outcomes, the
// pilot's role and rate, or, in fallback, whether Redis is back.
func (a *Actor) onReport(ctx actor.Context) {
	sh := a.sh
	if !a.enabled {
		return
	}
	if sh.fallback || sh.pilot || sh.accepted+sh.throttled+sh.demand > 0 || a.need() > 0 {
		a.lease(ctx, a.need())
		return
	}
	a.scheduleReport(reportEvery)
}

// observeShared counts an outcome for the pilot and applies a Retry-After
// locally.
func (a *Actor) observeShared(ctx actor.Context, o Outcome) {
	now := a.d.Clock.Now()
	switch {
	case o.Throttled():
		a.sh.throttled++
		a.sh.drop() // tokens leased at the old rate must not outlive the throttle
	case o.Accepted():
		a.sh.accepted++
	}
	if o.RetryAfter > 0 {
		a.bucket.Pause(now, o.RetryAfter)
		a.sh.drop()
		a.drain(ctx)
	}
	if o.Throttled() {
		// At once, not at the next report: the pilot cuts the shared rate
		// for every node, and the dropped tokens go to nodes not paused.
		a.lease(ctx, 0)
	}
}

// drop gives the leased stock up: it goes back to the cluster's budget
// with the next call, so a node that is throttled, paused or idle does not
// hold budget the others could use.
func (sh *shared) drop() {
	sh.refund += sh.stock
	sh.stock = 0
}

// newShared is the cluster side of a limiter (re)starting: no lease yet,
// the rate it knows until Redis answers.
func (a *Actor) newShared(up string) *shared {
	return &shared{
		d: a.d.Shared, rate: a.bucket.Rate(), nodesAlive: a.d.Shared.Node.Alive(),
		mLeased: a.d.Metrics.GetOrCreateCounter("deer_ratelimit_leased_total" + up),
		mCalls:  a.d.Metrics.GetOrCreateCounter("deer_ratelimit_redis_calls_total" + up),
		mErrors: a.d.Metrics.GetOrCreateCounter("deer_ratelimit_redis_errors_total" + up),
	}
}

func (a *Actor) clusterStats() *messages.LimiterCluster {
	sh := a.sh
	if sh == nil {
		return nil
	}
	return &messages.LimiterCluster{
		SharedRate: sh.rate, Pilot: sh.pilot, Leased: sh.leased, RedisCalls: sh.calls,
		RedisErrors: sh.errors, Leasing: sh.leasing, Fallback: sh.fallback, LocalRate: sh.localRate, NodesAlive: sh.nodesAlive,
	}
}
