package batch

import (
	"errors"
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/messages"
)

// Kind is the Upstream.Batch value that turns batching on.
const Kind = "openai-embeddings"

// Deps is what batch/UPSTREAM is built from.
type Deps struct {
	Name     string // SPEC §6 name, "batch/UPSTREAM"
	Upstream string
	Live     *conf.Live
	Clock    clock.Clock
	Log      zerolog.Logger
	Metrics  *metrics.Set
	// Sink returns who receives every flushed *messages.BatchReady: the
	// router, which runs the combined call (looked up by name, so a
	// restarted router is found). Nil, or a nil PID: each batch goes to its
	// first item's ReplyTo.
	Sink func() *actor.PID
}

// Props builds batch/UPSTREAM.
func Props(d Deps) *actor.Props {
	admin.Defaults(&d.Clock, &d.Metrics, &d.Live)
	return actor.PropsFromProducer(func() actor.Actor {
		a := &Actor{d: d}
		a.answers = admin.New(d.Name, a.status, a.stats, a.apply)
		return a
	})
}

var _ actor.Actor = (*Actor)(nil)

// Actor is batch/UPSTREAM. Its state is touched only on its own goroutine.
type Actor struct {
	answers *admin.Answers // the admin messages (status, stats, config, ping), built by Props
	d       Deps
	log     zerolog.Logger
	system  *actor.ActorSystem
	self    *actor.PID

	q        *Queue
	enabled  bool // the upstream has batch = "openai-embeddings"
	highUtil float64

	alarm clock.Alarm // wakes the batcher when the oldest batch times out

	mPending                    *metrics.Gauge
	mBatches, mItems, mRejected *metrics.Counter
	degraded                    bool
}

// tick wakes the batcher when the oldest batch times out.
type tick struct{ gen uint64 }

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	if a.answers.Handle(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *messages.EnqueueBatchItem:
		a.enqueue(ctx, msg)
	case *tick:
		if a.alarm.Fired(msg.gen) {
			a.emit(ctx, a.q.Due(a.d.Clock.Now()))
		}
	case *actor.Stopping, *actor.Restarting:
		// Accepted items are never dropped: what is pending goes now.
		a.alarm.Stop()
		if a.q != nil {
			a.emit(ctx, a.q.FlushAll(ReasonShutdown))
		}
	case *actor.Stopped:
	default:
		a.log.Debug().Str("type", fmt.Sprintf("%T", msg)).Msg("unknown message")
	}
}

func (a *Actor) start(ctx actor.Context) {
	a.system, a.self = ctx.ActorSystem(), ctx.Self()
	a.log = a.d.Log.With().Str("actor", a.d.Name).Logger()
	up := metricname.Labels("upstream", a.d.Upstream)
	a.mPending = a.d.Metrics.GetOrCreateGauge("deer_batch_pending"+up, nil)
	a.mBatches = a.d.Metrics.GetOrCreateCounter("deer_batch_batches_total" + up)
	a.mItems = a.d.Metrics.GetOrCreateCounter("deer_batch_items_total" + up)
	a.mRejected = a.d.Metrics.GetOrCreateCounter("deer_batch_rejected_total" + up)

	cfg := a.d.Live.Load()
	a.q = NewQueue(SettingsFrom(cfg))
	a.settle(cfg)
	a.changed()
}

// settle reads the settings outside the queue's own.
func (a *Actor) settle(cfg *conf.Config) {
	up, ok := cfg.Upstreams[a.d.Upstream]
	a.enabled = ok && up.Batch == Kind
	a.highUtil = cfg.Monitoring.HighUtilizationThreshold
}

func (a *Actor) enqueue(ctx actor.Context, msg *messages.EnqueueBatchItem) {
	to := admin.ReplyTo(ctx, msg.ReplyTo)
	reject := func(reason string) {
		if to != nil {
			ctx.Send(to, &messages.BatchRejected{ID: msg.ID, Reason: reason})
		}
	}
	switch {
	case !a.enabled:
		reject("disabled")
		return
	case msg.Inputs < 1:
		reject("invalid")
		return
	}
	item := Item{
		ID: msg.ID, Model: msg.Model, Options: msg.Options, Inputs: msg.Inputs, Priority: msg.Priority,
		Data: &messages.BatchItem{ID: msg.ID, Inputs: msg.Inputs, Priority: msg.Priority, Payload: msg.Payload, ReplyTo: to},
	}
	ready, err := a.q.Add(a.d.Clock.Now(), item)
	if errors.Is(err, ErrQueueFull) {
		a.mRejected.Inc()
		reject("queue_full")
		a.changed()
		return
	}
	if to != nil {
		ctx.Send(to, &messages.BatchAccepted{ID: msg.ID})
	}
	a.emit(ctx, ready)
}

// emit hands flushed batches to the sink, then refreshes metrics and the
// timeout timer.
func (a *Actor) emit(ctx actor.Context, ready []Batch) {
	for _, b := range ready {
		out := &messages.BatchReady{
			Upstream: a.d.Upstream, Model: b.Model, Options: b.Options, Inputs: b.Inputs,
			Reason: b.Reason.String(), Items: make([]*messages.BatchItem, 0, len(b.Items)),
		}
		for _, it := range b.Items {
			out.Items = append(out.Items, it.Data.(*messages.BatchItem))
		}
		a.mBatches.Inc()
		a.mItems.Add(len(b.Items))
		if to := a.sink(out); to != nil {
			ctx.Send(to, out)
		} else {
			a.log.Warn().Str("model", b.Model).Int("items", len(b.Items)).Int("inputs", b.Inputs).
				Str("reason", out.Reason).Msg("batch ready with nobody to run it")
		}
	}
	a.changed()
}

// sink is where batch b goes.
func (a *Actor) sink(b *messages.BatchReady) *actor.PID {
	if a.d.Sink != nil {
		if pid := a.d.Sink(); pid != nil {
			return pid
		}
	}
	for _, it := range b.Items {
		if it.ReplyTo != nil {
			return it.ReplyTo
		}
	}
	return nil
}

// changed refreshes the pending gauge, the degraded flag and the timer.
func (a *Actor) changed() {
	pending := a.q.Pending()
	a.mPending.Set(float64(pending))
	over := a.over()
	if over && !a.degraded {
		a.log.Warn().Int("pending", pending).Int("max_queue_size", a.q.Settings().MaxQueue).
			Msg("batch queue above high_utilization_threshold")
	} else if !over && a.degraded {
		a.log.Info().Int("pending", pending).Msg("batch queue back to normal")
	}
	a.degraded = over

	due, ok := a.q.NextDeadline()
	if !ok {
		a.alarm.Stop()
		return
	}
	system, self := a.system, a.self
	a.alarm.Set(a.d.Clock, due, func(gen uint64) { system.Root.Send(self, &tick{gen: gen}) })
}

func (a *Actor) over() bool {
	return float64(a.q.Pending()) > a.highUtil*float64(a.q.Settings().MaxQueue)
}

func (a *Actor) apply(ctx actor.Context, cfg *conf.Config) {
	was := a.enabled
	a.settle(cfg)
	if was != a.enabled {
		a.log.Info().Bool("enabled", a.enabled).Msg("batching switched by the upstream's batch setting")
	}
	now := a.d.Clock.Now()
	ready := a.q.Configure(now, SettingsFrom(cfg))
	if !a.enabled {
		ready = append(ready, a.q.FlushAll(ReasonConfig)...)
	}
	a.emit(ctx, ready)
}

func (a *Actor) status() *messages.StatusReport {
	r := &messages.StatusReport{Actor: a.d.Name, State: messages.StateHealthy}
	switch {
	case !a.enabled:
		r.State, r.Detail = messages.StateDisabled, fmt.Sprintf("upstream %q has no batch = %q", a.d.Upstream, Kind)
	case a.over():
		r.State = messages.StateDegraded
		r.Detail = fmt.Sprintf("%d items pending, above high_utilization_threshold %.2f of max_queue_size %d",
			a.q.Pending(), a.highUtil, a.q.Settings().MaxQueue)
	}
	return r
}

func (a *Actor) stats() *messages.BatchStats {
	s, qs := a.q.Settings(), a.q.Stats()
	return &messages.BatchStats{
		Upstream:        a.d.Upstream,
		Enabled:         a.enabled,
		Pending:         qs.Pending,
		MaxQueueSize:    s.MaxQueue,
		BatchSize:       s.Size,
		BatchTimeout:    s.Timeout.Seconds(),
		PriorityEnabled: s.PriorityEnabled,
		AdaptiveSizing:  s.Adaptive,
		BatchesSent:     qs.Batches,
		ItemsSent:       qs.Items,
		InputsSent:      qs.Inputs,
		Rejected:        qs.Rejected,
	}
}
