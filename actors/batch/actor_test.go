package batch

import (
	"bytes"
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

type fixture struct {
	system  *actor.ActorSystem
	pid     *actor.PID
	live    *conf.Live
	clock   *clock.Fake
	set     *metrics.Set
	replies *actor.PID // gets BatchAccepted / BatchRejected
	rch     chan any
	sink    *actor.PID // gets BatchReady
	sch     chan any
}

// testConfig: upstream "emb" batches, 3 inputs per batch, 1.5s, 5 pending,
// adaptive sizing off so that sizes are exact.
func testConfig(mut func(*conf.Config)) *conf.Config {
	cfg := conf.Default()
	cfg.Upstreams = map[string]conf.Upstream{"emb": {BaseURL: "http://127.0.0.1:1", Batch: Kind}}
	cfg.BatchProcessing = conf.BatchProcessing{BatchSize: 3, BatchTimeout: 1.5, MaxQueueSize: 5, PriorityEnabled: true}
	if mut != nil {
		mut(cfg)
	}
	return cfg
}

func start(t *testing.T, cfg *conf.Config) *fixture {
	t.Helper()
	f := &fixture{
		system: actortest.NewSystem(t),
		live:   conf.NewLive(cfg),
		clock:  clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		set:    metrics.NewSet(),
	}
	f.replies, f.rch = actortest.Probe(t, f.system)
	f.sink, f.sch = actortest.Probe(t, f.system)
	f.pid = actortest.Spawn(t, f.system, actortest.Panicky(Props(Deps{
		Name: "batch/emb", Upstream: "emb", Live: f.live, Clock: f.clock,
		Log: zerolog.Nop(), Metrics: f.set, Sink: func() *actor.PID { return f.sink },
	})))
	return f
}

func (f *fixture) enqueue(id uint64, model string, inputs, priority int) {
	f.system.Root.Send(f.pid, &messages.EnqueueBatchItem{
		ID: id, Model: model, Inputs: inputs, Priority: priority, Payload: []byte{byte(id)}, ReplyTo: f.replies,
	})
}

func (f *fixture) stats(t *testing.T) *messages.BatchStats {
	return actortest.Stats[*messages.BatchStats](t, f.system, f.pid)
}

func (f *fixture) status(t *testing.T) *messages.StatusReport {
	return actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{})
}

func (f *fixture) apply(t *testing.T, cfg *conf.Config) {
	t.Helper()
	f.live.Store(cfg)
	if r := actortest.Ask[*messages.ConfigApplied](t, f.system, f.pid, &messages.ApplyConfig{Config: cfg}); r.Err != "" || r.Actor != "batch/emb" {
		t.Fatalf("ConfigApplied %+v", r)
	}
}

// ready waits for the next BatchReady and checks its ids and reason.
func (f *fixture) ready(t *testing.T, reason string, ids ...uint64) *messages.BatchReady {
	t.Helper()
	b := actortest.Recv[*messages.BatchReady](t, f.sch)
	var got []uint64
	for _, it := range b.Items {
		got = append(got, it.ID)
		if len(it.Payload) != 1 || uint64(it.Payload[0]) != it.ID || it.ReplyTo == nil {
			t.Fatalf("item %+v lost its payload or reply-to", it)
		}
	}
	if b.Reason != reason || b.Upstream != "emb" || len(got) != len(ids) {
		t.Fatalf("batch %+v (ids %v), want %s %v", b, got, reason, ids)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("batch ids %v, want %v", got, ids)
		}
	}
	return b
}

// noBatch checks that nothing reached the sink before now.
func (f *fixture) noBatch(t *testing.T) {
	t.Helper()
	f.stats(t)
	if got := actortest.Drain(t, f.system, f.sink, f.sch); len(got) != 0 {
		t.Fatalf("unexpected batches %+v", got)
	}
}

func TestAdminMessages(t *testing.T) {
	f := start(t, testConfig(nil))
	if p := actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{Seq: 2}); p.Seq != 2 || p.Actor != "batch/emb" {
		t.Fatalf("pong %+v", p)
	}
	if s := f.status(t); s.State != messages.StateHealthy {
		t.Fatalf("status %+v", s)
	}
	st := f.stats(t)
	if !st.Enabled || st.BatchSize != 3 || st.BatchTimeout != 1.5 || st.MaxQueueSize != 5 || !st.PriorityEnabled || st.AdaptiveSizing {
		t.Fatalf("stats %+v", st)
	}
	f.system.Root.Send(f.pid, 3.14)
	actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{})
}

func TestDisabledUpstream(t *testing.T) {
	f := start(t, testConfig(func(c *conf.Config) { c.Upstreams["emb"] = conf.Upstream{BaseURL: "http://127.0.0.1:1"} }))
	r := actortest.Ask[*messages.BatchRejected](t, f.system, f.pid, &messages.EnqueueBatchItem{ID: 1, Model: "m", Inputs: 1})
	if r.ID != 1 || r.Reason != "disabled" {
		t.Fatalf("reply %+v", r)
	}
	if s := f.status(t); s.State != messages.StateDisabled {
		t.Fatalf("status %+v", s)
	}
	if st := f.stats(t); st.Enabled {
		t.Fatalf("stats %+v", st)
	}
}

func TestFlushOnSizeTimeoutPriority(t *testing.T) {
	f := start(t, testConfig(nil))
	f.enqueue(1, "m", 1, 1)
	f.enqueue(2, "other", 1, 1)
	f.enqueue(3, "m", 2, 1)
	b := f.ready(t, "size", 1, 3)
	if b.Model != "m" || b.Inputs != 3 {
		t.Fatalf("batch %+v", b)
	}
	for range 3 {
		actortest.Recv[*messages.BatchAccepted](t, f.rch)
	}

	actortest.Timers(t, f.clock, 1500*time.Millisecond) // "other" times out 1.5s after it came
	f.clock.Advance(1500 * time.Millisecond)
	f.ready(t, "timeout", 2)

	f.enqueue(4, "m", 1, 2)
	f.enqueue(5, "m", 1, 0) // high priority: goes at once with what waits
	f.ready(t, "priority", 4, 5)

	st := f.stats(t)
	if st.Pending != 0 || st.BatchesSent != 3 || st.ItemsSent != 5 || st.InputsSent != 6 {
		t.Fatalf("stats %+v", st)
	}
	actortest.Timers(t, f.clock) // nothing pending, no timer
	var prom bytes.Buffer
	f.set.WritePrometheus(&prom)
	for _, line := range []string{`deer_batch_pending{upstream="emb"} 0`, `deer_batch_batches_total{upstream="emb"} 3`} {
		if !strings.Contains(prom.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, prom.String())
		}
	}
}

func TestQueueFullAndDegraded(t *testing.T) {
	f := start(t, testConfig(nil))
	for id := uint64(1); id <= 5; id++ {
		f.enqueue(id, string(rune('a'+id)), 1, 1) // five models: nothing fills
	}
	f.enqueue(6, "a", 1, 1)
	for range 5 {
		actortest.Recv[*messages.BatchAccepted](t, f.rch)
	}
	if r := actortest.Recv[*messages.BatchRejected](t, f.rch); r.ID != 6 || r.Reason != "queue_full" {
		t.Fatalf("reply %+v", r)
	}
	if st := f.stats(t); st.Pending != 5 || st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}
	if s := f.status(t); s.State != messages.StateDegraded || !strings.Contains(s.Detail, "5 items pending") {
		t.Fatalf("status %+v", s)
	}
	r := actortest.Ask[*messages.BatchRejected](t, f.system, f.pid, &messages.EnqueueBatchItem{ID: 7, Model: "m", Inputs: 0})
	if r.Reason != "invalid" {
		t.Fatalf("reply %+v", r)
	}
}

func TestApplyConfigLive(t *testing.T) {
	t.Run("batch_size flushes now-full batches", func(t *testing.T) {
		f := start(t, testConfig(func(c *conf.Config) { c.BatchProcessing.BatchSize = 10 }))
		for id := uint64(1); id <= 3; id++ {
			f.enqueue(id, "m", 1, 1)
		}
		f.noBatch(t)
		f.apply(t, testConfig(func(c *conf.Config) { c.BatchProcessing.BatchSize = 2 }))
		f.ready(t, "config", 1, 2)
		if st := f.stats(t); st.BatchSize != 2 || st.Pending != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("batch_timeout", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.enqueue(1, "m", 1, 1)
		actortest.Timers(t, f.clock, 1500*time.Millisecond)
		f.clock.Advance(500 * time.Millisecond)
		f.apply(t, testConfig(func(c *conf.Config) { c.BatchProcessing.BatchTimeout = 0.8 }))
		actortest.Timers(t, f.clock, 300*time.Millisecond)
		f.apply(t, testConfig(func(c *conf.Config) { c.BatchProcessing.BatchTimeout = 0.4 }))
		f.ready(t, "timeout", 1) // already older than the new timeout
		if st := f.stats(t); st.BatchTimeout != 0.4 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("max_queue_size", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.enqueue(1, "a", 1, 1)
		f.enqueue(2, "b", 1, 1)
		f.apply(t, testConfig(func(c *conf.Config) { c.BatchProcessing.MaxQueueSize = 2 }))
		f.enqueue(3, "c", 1, 1)
		actortest.Recv[*messages.BatchAccepted](t, f.rch)
		actortest.Recv[*messages.BatchAccepted](t, f.rch)
		if r := actortest.Recv[*messages.BatchRejected](t, f.rch); r.ID != 3 {
			t.Fatalf("reply %+v", r)
		}
		if st := f.stats(t); st.MaxQueueSize != 2 || st.Pending != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("priority_enabled", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.apply(t, testConfig(func(c *conf.Config) { c.BatchProcessing.PriorityEnabled = false }))
		f.enqueue(1, "m", 1, 0)
		f.noBatch(t)
		if st := f.stats(t); st.PriorityEnabled || st.Pending != 1 {
			t.Fatalf("stats %+v", st)
		}
		f.apply(t, testConfig(nil))
		f.enqueue(2, "m", 1, 0)
		f.ready(t, "priority", 1, 2)
	})
	t.Run("advanced optimization off turns priorities off", func(t *testing.T) {
		f := start(t, testConfig(func(c *conf.Config) { c.EnableAdvancedOptimization = false }))
		f.enqueue(1, "m", 1, 0)
		f.noBatch(t)
	})
	t.Run("adaptive_sizing", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.apply(t, testConfig(func(c *conf.Config) { c.BatchProcessing.AdaptiveSizing = true }))
		f.enqueue(1, "m", 1, 1)
		actortest.Timers(t, f.clock, 1500*time.Millisecond)
		f.clock.Advance(1500 * time.Millisecond)
		f.ready(t, "timeout", 1)
		f.clock.Advance(3 * time.Second)
		f.enqueue(2, "m", 1, 1) // 4.5s after the last: sparse, goes at once
		f.ready(t, "adaptive", 2)
		if st := f.stats(t); !st.AdaptiveSizing {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("upstream batch switched off flushes", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.enqueue(1, "m", 1, 1)
		f.apply(t, testConfig(func(c *conf.Config) { c.Upstreams["emb"] = conf.Upstream{BaseURL: "http://127.0.0.1:1"} }))
		f.ready(t, "config", 1)
		if s := f.status(t); s.State != messages.StateDisabled {
			t.Fatalf("status %+v", s)
		}
	})
	t.Run("high_utilization_threshold", func(t *testing.T) {
		f := start(t, testConfig(nil))
		f.enqueue(1, "a", 1, 1)
		f.enqueue(2, "b", 1, 1)
		if s := f.status(t); s.State != messages.StateHealthy {
			t.Fatalf("2/5 at 0.8: %+v", s)
		}
		f.apply(t, testConfig(func(c *conf.Config) { c.Monitoring.HighUtilizationThreshold = 0.2 }))
		if s := f.status(t); s.State != messages.StateDegraded {
			t.Fatalf("2/5 at 0.2: %+v", s)
		}
	})
}

func TestStopAndRestartFlushPending(t *testing.T) {
	f := start(t, testConfig(nil))
	f.enqueue(1, "m", 1, 1)
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	f.ready(t, "shutdown", 1)
	if st := f.stats(t); st.Pending != 0 {
		t.Fatalf("after restart %+v", st)
	}
	f.enqueue(2, "m", 1, 1)
	f.stats(t)
	if err := f.system.Root.StopFuture(f.pid).Wait(); err != nil {
		t.Fatal(err)
	}
	f.ready(t, "shutdown", 2)
}
