package breaker

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/messages"
)

// Deps is what breaker/UPSTREAM/ENDPOINT is built from.
type Deps struct {
	Name     string // SPEC §6 name, "breaker/UPSTREAM/ENDPOINT"
	Upstream string
	Endpoint string // the endpoint's base URL
	Live     *conf.Live
	Clock    clock.Clock
	Log      zerolog.Logger
	Metrics  *metrics.Set
	// Board, when set, is where the breaker publishes its state for workers
	// to read without asking (see Board): at start, and whenever its state,
	// generation or OpenUntil changes. nil: none.
	Board *Board
	// Shared, when set (cluster.redis_url), makes the breaker one of the
	// cluster's: its openings and closings reach the other nodes' breakers
	// of the endpoint, theirs reach it, and half_open lets one probe
	// through cluster-wide. nil: this node alone.
	Shared *cluster.Breakers
}

// Props builds breaker/UPSTREAM/ENDPOINT. The props carry the breaker's
// state across restarts (SPEC §6): a crash must not close an open breaker.
func Props(d Deps) *actor.Props {
	admin.Defaults(&d.Clock, &d.Metrics, &d.Live)
	saved := &atomic.Pointer[Breaker]{}
	return actor.PropsFromProducer(func() actor.Actor {
		a := &Actor{d: d, saved: saved}
		a.answers = admin.New(d.Name, a.status, a.stats, a.apply)
		return a
	})
}

var _ actor.Actor = (*Actor)(nil)

// Actor is breaker/UPSTREAM/ENDPOINT. Its state is touched only on its own
// goroutine.
type Actor struct {
	answers *admin.Answers // the admin messages (status, stats, config, ping), built by Props
	d       Deps
	saved   *atomic.Pointer[Breaker]
	log     zerolog.Logger
	system  *actor.ActorSystem
	self    *actor.PID

	b       *Breaker
	enabled bool // enable_advanced_optimization: off allows every call
	shown   State
	posted  Entry // last entry set on the board
	hasPost bool

	alarm clock.Alarm // wakes the breaker at its next deadline (reopen, lost probe)

	unwatch  func()                 // stops the other nodes' changes reaching it; nil on one node
	adopting *cluster.BreakerChange // the other node's change being applied: not published again
	from     string                 // the node whose opening holds it open

	mState *metrics.Gauge
	mOpens *metrics.Counter
}

// tick wakes the breaker at its deadline (reopen, lost probe).
type tick struct{ gen uint64 }

// remote is another node's change to its breaker of the same endpoint.
type remote struct{ change cluster.BreakerChange }

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	if a.answers.Handle(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *messages.CheckBreaker:
		a.check(ctx, msg)
	case *messages.ReportResult:
		a.report(msg)
	case *tick:
		if a.alarm.Fired(msg.gen) {
			a.b.Advance(a.d.Clock.Now())
			a.settle()
		}
	case *remote:
		a.adopt(msg.change)
	case *actor.Stopping, *actor.Restarting:
		a.alarm.Stop()
		if a.unwatch != nil {
			a.unwatch()
			a.unwatch = nil
		}
		if a.b != nil {
			b := *a.b
			a.saved.Store(&b)
		}
	case *actor.Stopped:
	default:
		a.log.Debug().Str("type", fmt.Sprintf("%T", msg)).Msg("unknown message")
	}
}

func (a *Actor) start(ctx actor.Context) {
	a.system, a.self = ctx.ActorSystem(), ctx.Self()
	a.log = a.d.Log.With().Str("actor", a.d.Name).Logger()
	labels := metricname.Labels("upstream", a.d.Upstream, "endpoint", a.d.Endpoint)
	a.mState = a.d.Metrics.GetOrCreateGauge("deer_breaker_state"+labels, nil)
	a.mOpens = a.d.Metrics.GetOrCreateCounter("deer_breaker_opens_total" + labels)

	cfg, now := a.d.Live.Load(), a.d.Clock.Now()
	if b := a.saved.Swap(nil); b != nil {
		a.b = b
		a.sample(now) // the quiet successes while it restarted
		a.b.Configure(now, SettingsFrom(cfg.ErrorRecovery))
		a.log.Info().Stringer("state", a.b.State()).Msg("circuit breaker resumed")
	} else {
		a.b = New(SettingsFrom(cfg.ErrorRecovery))
		a.sample(now) // the starting point of the board's count
	}
	a.shown = a.b.State()
	a.enabled = cfg.EnableAdvancedOptimization
	if !a.enabled {
		a.b.Reset(now)
	}
	a.settle()
	a.join()
}

// join starts hearing the other nodes' changes of this endpoint, then
// takes an opening already in force in the cluster (a node that starts
// while the endpoint is open elsewhere does not rediscover it with calls).
func (a *Actor) join() {
	sh := a.d.Shared
	if sh == nil {
		return
	}
	system, self := a.system, a.self
	a.unwatch = sh.Watch(a.d.Upstream, a.d.Endpoint, func(c cluster.BreakerChange) {
		system.Root.Send(self, &remote{change: c})
	})
	c, open, err := sh.Current(a.d.Upstream, a.d.Endpoint)
	switch {
	case err != nil:
		a.log.Warn().Err(err).Msg("cluster breaker state unreadable: starting from this node's own")
	case open:
		a.adopt(c)
	}
}

// adopt applies another node's change: the endpoint opened or closed there.
func (a *Actor) adopt(c cluster.BreakerChange) {
	if !a.enabled {
		return
	}
	st := Closed
	if c.State == cluster.BreakerOpen {
		st = Open
	}
	if !a.b.Adopt(a.d.Clock.Now(), st, time.Duration(c.OpenFor)*time.Millisecond) {
		return
	}
	if st == Open {
		a.from = c.Node
	}
	a.adopting = &c
	a.settle()
	a.adopting = nil
}

// SettingsFrom returns the breaker settings of error_recovery.
func SettingsFrom(er conf.ErrorRecovery) Settings {
	return Settings{
		Threshold: er.CircuitBreakerThreshold,
		Rate:      er.FailureRateThreshold,
		Window:    conf.Seconds(er.FailureWindow),
		Timeout:   conf.Seconds(er.CircuitBreakerTimeout),
	}
}

// sample gives the core the successes workers counted on the board instead
// of reporting them (Board.Quiet), before anything else is recorded at now.
func (a *Actor) sample(now time.Time) {
	a.b.CountQuiet(now, a.d.Board.QuietCalls(a.d.Upstream, a.d.Endpoint))
}

func (a *Actor) check(ctx actor.Context, msg *messages.CheckBreaker) {
	to := admin.ReplyTo(ctx, msg.ReplyTo)
	var v Verdict
	if a.enabled {
		// Even without anyone to answer: a probe slot taken by a caller
		// that cannot hear the verdict is freed by the lost-probe timeout.
		now := a.d.Clock.Now()
		a.sample(now)
		v = a.b.Allow(now)
		if v.Allowed && v.State == HalfOpen && !a.claimProbe() {
			a.b.ProbeElsewhere(now)
			due, _ := a.b.Deadline()
			v = Verdict{Gen: a.b.Gen(), State: HalfOpen, RetryIn: due.Sub(now)}
		}
		a.settle()
	} else {
		v = Verdict{Allowed: true, Gen: a.b.Gen(), State: a.b.State()}
	}
	if to == nil {
		a.log.Debug().Uint64("id", msg.ID).Msg("CheckBreaker without sender or reply-to")
		return
	}
	ctx.Send(to, &messages.BreakerVerdict{ID: msg.ID, Allowed: v.Allowed, Generation: v.Gen, State: v.State.String(), RetryIn: v.RetryIn})
}

// claimProbe reports whether the probe Allow granted may go: always on one
// node; in a cluster, when this node claimed the cluster's one probe of the
// endpoint, or when Redis did not answer (the node then decides alone, as
// a single node would: at worst one probe per node).
func (a *Actor) claimProbe() bool {
	if a.d.Shared == nil {
		return true
	}
	won, err := a.d.Shared.ClaimProbe(a.d.Upstream, a.d.Endpoint, a.b.Timeout())
	if err != nil {
		a.log.Warn().Err(err).Msg("cluster probe claim failed: probing from this node")
		return true
	}
	if !won {
		a.log.Debug().Msg("half_open probe held by another node")
	}
	return won
}

func (a *Actor) report(msg *messages.ReportResult) {
	if msg.Counted {
		defer a.d.Board.Reported(a.d.Upstream, a.d.Endpoint) // after the entry shows the failure
	}
	if !a.enabled {
		return
	}
	record(a.b, a.d.Clock.Now(), a.d.Board.QuietCalls(a.d.Upstream, a.d.Endpoint), msg)
	a.settle()
}

// record applies a worker's report at now: first the successes counted on
// the board since the last report (quiet, Board.QuietCalls), so that the
// window holds the calls that came before this one, then the result.
func record(b *Breaker, now time.Time, quiet uint64, msg *messages.ReportResult) {
	b.CountQuiet(now, quiet)
	switch {
	case msg.Neutral:
		b.RecordNeutral(now, msg.Generation)
	case msg.Success:
		b.RecordSuccess(now, msg.Generation)
	default:
		b.RecordFailure(now, msg.Generation, msg.RetryAfter)
	}
}

// settle publishes a state change (metric, one log line, an event, the
// board entry) and keeps one timer set at the breaker's next deadline.
func (a *Actor) settle() {
	a.post()
	st := a.b.State()
	a.mState.Set(float64(st))
	if st != a.shown {
		from := a.shown
		a.shown = st
		ev := a.log.Info()
		if st == Open {
			a.mOpens.Inc()
			ev = a.log.Warn().Dur("retry_in", a.b.RetryIn(a.d.Clock.Now()))
			if !a.b.ReopenedByProbe() {
				failures, calls := a.b.Tripped()
				ev = ev.Int64("window_failures", failures).Int64("window_calls", calls).Int("consecutive_failures", a.b.Failures())
			}
		}
		if a.adopting != nil {
			ev = ev.Str("by_node", a.adopting.Node)
		}
		ev.Stringer("from", from).Stringer("to", st).Uint64("generation", a.b.Gen()).Msg("circuit breaker state changed")
		a.share(from, st)
		a.system.EventStream.Publish(&messages.BreakerStateChanged{
			Upstream: a.d.Upstream, Endpoint: a.d.Endpoint, State: st.String(), Generation: a.b.Gen(),
		})
	}

	due, ok := a.b.Deadline()
	if !ok {
		a.alarm.Stop()
		return
	}
	system, self := a.system, a.self
	a.alarm.Set(a.d.Clock, due, func(gen uint64) { system.Root.Send(self, &tick{gen: gen}) })
}

// share tells the other nodes of a change this node made: an opening (for
// what is left of it), or a closing by a successful probe. Changes adopted
// from them are not sent back, nor is a closing that only this node made
// (enable_advanced_optimization switched off here).
func (a *Actor) share(from, to State) {
	if a.d.Shared == nil || a.adopting != nil {
		return
	}
	c := cluster.BreakerChange{Upstream: a.d.Upstream, Endpoint: a.d.Endpoint}
	switch {
	case to == Open:
		a.from = ""
		c.State, c.OpenFor = cluster.BreakerOpen, a.b.RetryIn(a.d.Clock.Now()).Milliseconds()
	case to == Closed && from == HalfOpen:
		c.State = cluster.BreakerClosed
	default:
		return
	}
	a.d.Shared.Publish(c)
}

// post sets the breaker's entry on the board when it differs from the last
// one set: every transition, generation change (a lost or neutral probe)
// and probe grant (OpenUntil moves) is seen by workers.
func (a *Actor) post() {
	if a.d.Board == nil {
		return
	}
	e := entry(a.b, a.d.Upstream, a.d.Endpoint, a.d.Name)
	if a.hasPost && e.same(&a.posted) {
		return
	}
	a.posted, a.hasPost = e, true
	a.d.Board.Set(e)
}

// entry is b's board entry.
func entry(b *Breaker, upstream, endpoint, name string) Entry {
	e := Entry{
		Upstream: upstream, Endpoint: endpoint, Actor: name,
		State: b.State(), Generation: b.Gen(), OpenUntil: b.OpenUntil(),
	}
	if e.State == Closed {
		e.Failures = b.Failures()
	}
	return e
}

func (a *Actor) apply(_ actor.Context, cfg *conf.Config) {
	now := a.d.Clock.Now()
	a.sample(now)
	a.b.Configure(now, SettingsFrom(cfg.ErrorRecovery))
	if a.enabled != cfg.EnableAdvancedOptimization {
		a.enabled = cfg.EnableAdvancedOptimization
		a.log.Info().Bool("enabled", a.enabled).Msg("circuit breaker switched by enable_advanced_optimization")
		if !a.enabled {
			a.b.Reset(now) // off means every call goes; back on starts closed
		}
	}
	a.settle()
}

func (a *Actor) status() *messages.StatusReport {
	r := &messages.StatusReport{Actor: a.d.Name, State: messages.StateHealthy}
	switch {
	case !a.enabled:
		r.State, r.Detail = messages.StateDisabled, "enable_advanced_optimization is false"
	case a.b.State() == Open:
		r.State = messages.StateDegraded
		failures, calls := a.b.Tripped()
		cause := fmt.Sprintf("after %d failures in %d calls within %s", failures, calls, a.b.Settings().Window)
		switch {
		case a.b.Remote():
			cause = "by node " + a.from
		case a.b.ReopenedByProbe():
			cause = "again: the half_open probe failed"
		}
		r.Detail = fmt.Sprintf("circuit open %s; probe in %s", cause, a.b.RetryIn(a.d.Clock.Now()).Round(time.Millisecond))
	case a.b.State() == HalfOpen:
		r.State, r.Detail = messages.StateDegraded, "circuit half_open: probing the endpoint"
	}
	return r
}

func (a *Actor) stats() *messages.BreakerStats {
	return &messages.BreakerStats{
		Upstream:            a.d.Upstream,
		Endpoint:            a.d.Endpoint,
		Enabled:             a.enabled,
		State:               a.b.State().String(),
		ConsecutiveFailures: a.b.Failures(),
		Threshold:           a.b.Threshold(),
		OpenTimeout:         a.b.Timeout().Seconds(),
		Opens:               a.b.Opens(),
		Generation:          a.b.Gen(),
		RetryIn:             a.b.RetryIn(a.d.Clock.Now()).Seconds(),
	}
}
