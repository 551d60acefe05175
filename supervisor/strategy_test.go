package supervisor

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/messages"
)

const ms = time.Millisecond

// oneProbe starts group "g" supervising one probe named "probe".
func oneProbe(h *harness, s *Strategy, rec *recorder) *actor.PID {
	h.spawnRoot("g", children(ChildSpec{Name: "probe", Props: probeProps("probe", rec)}), s)
	awaitStarted(h.t, rec, 1)
	return h.pid("probe")
}

func TestRestartBackoffAndRedelivery(t *testing.T) {
	h := newHarness(t)
	p := testPolicy() // 100ms ×2 up to 1s, no jitter
	p.MaxRedeliveries = 10
	rec := newRecorder(0)
	probe := oneProbe(h, h.strategy(p), rec)

	msg := &crash{fails: 5}
	f := h.sys.Root.RequestFuture(probe, msg, waitLimit)

	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second}
	for i, w := range want {
		d := h.awaitTimer()
		if d != w {
			t.Fatalf("restart %d: delay %v, want %v", i+1, d, w)
		}
		if s := h.state("probe"); s != Restarting {
			t.Fatalf("restart %d pending: registry says %v, want restarting", i+1, s)
		}
		h.clk.Advance(d - time.Nanosecond) // not yet
		if s := h.state("probe"); s != Restarting {
			t.Fatalf("restart %d, 1ns early: registry says %v", i+1, s)
		}
		h.clk.Advance(time.Nanosecond)
	}

	// The sixth delivery, a redelivery of the same envelope, succeeds and
	// the reply reaches the original requester.
	res, err := f.Result()
	if err != nil {
		t.Fatalf("requester got no reply: %v", err)
	}
	if d, ok := res.(*done); !ok || d.deliveries != 6 {
		t.Fatalf("reply %#v, want done after 6 deliveries", res)
	}
	e, _ := h.reg.Get("probe")
	if e.State != Running || e.Restarts != 5 || e.LastFailure != "probe: delivery 5" || !e.LastFailureAt.Equal(t0.Add(1500*ms)) {
		t.Fatalf("registry entry %+v", e)
	}
	if got := h.counter("deer_actor_restarts_total", "probe"); got != 5 {
		t.Errorf("restarts_total = %d, want 5", got)
	}
	if got := h.counter("deer_actor_redeliveries_total", "probe"); got != 5 {
		t.Errorf("redeliveries_total = %d, want 5", got)
	}
	// Each restart made a new incarnation; none is left pending.
	for i := 2; i <= 6; i++ {
		awaitStarted(t, rec, i)
	}
	if n := len(h.clk.Pending()); n != 0 {
		t.Errorf("%d timers still pending", n)
	}
}

func TestJitterStaysWithinBounds(t *testing.T) {
	h := newHarness(t)
	p := testPolicy()
	p.MinBackoff, p.MaxBackoff, p.Jitter, p.MaxRedeliveries = 100*ms, 400*ms, 0.5, 10
	rec := newRecorder(0)
	probe := oneProbe(h, h.strategy(p), rec)

	f := h.sys.Root.RequestFuture(probe, &crash{fails: 6}, waitLimit)
	var delays []time.Duration
	for i := 1; i <= 6; i++ {
		d := h.fireTimer()
		nominal := p.Backoff(i)
		lo, hi := nominal/2, min(nominal*3/2, p.MaxBackoff)
		if d < lo || d > hi {
			t.Fatalf("restart %d: delay %v outside [%v, %v]", i, d, lo, hi)
		}
		delays = append(delays, d)
	}
	if _, err := f.Result(); err != nil {
		t.Fatal(err)
	}
	jittered := false
	for i, d := range delays {
		jittered = jittered || d != p.Backoff(i+1)
	}
	if !jittered {
		t.Fatalf("delays %v are exactly the nominal ones: no jitter", delays)
	}
}

func TestPoisonMessageIsGivenUp(t *testing.T) {
	h := newHarness(t)
	p := testPolicy() // MaxRedeliveries 3
	gaveUp := make(chan GiveUp, 1)
	rec := newRecorder(0)
	s := h.strategy(p, WithGiveUp(func(g GiveUp) { gaveUp <- g }))
	probe := oneProbe(h, s, rec)

	msg := &crash{fails: 1 << 30}
	f := h.sys.Root.RequestFuture(probe, msg, waitLimit)
	h.fireTimer() // crash 1: redelivered
	h.fireTimer() // crash 2: redelivered
	// Crash 3 gives the message up at once; the restart still follows.
	res, err := f.Result()
	if err != nil {
		t.Fatalf("requester got no answer: %v", err)
	}
	df, ok := res.(*messages.DeliveryFailed)
	if !ok || df.Actor != "probe" || df.Message != msg || df.Attempts != 3 || df.Reason != "probe: delivery 3" {
		t.Fatalf("answer %#v, want DeliveryFailed after 3 attempts", res)
	}
	select {
	case g := <-gaveUp:
		if g.Actor != "probe" || g.Message != msg || g.Attempts != 3 || g.Escalated || g.Sender == nil || g.Child.Id != probe.Id || g.Supervisor.Id != "g" {
			t.Fatalf("give-up hook got %+v", g)
		}
	case <-time.After(waitLimit):
		t.Fatal("give-up hook not called")
	}
	if d := h.fireTimer(); d != 400*ms {
		t.Fatalf("third restart after %v, want 400ms", d)
	}
	h.ping(probe) // restarted and working
	if n := rec.delivered(msg); n != 3 {
		t.Fatalf("poison message delivered %d times, want 3", n)
	}
	if got := h.counter("deer_actor_deliveries_failed_total", "probe"); got != 1 {
		t.Errorf("deliveries_failed_total = %d, want 1", got)
	}
}

func TestResetAfterCalmPeriod(t *testing.T) {
	h := newHarness(t)
	p := testPolicy()
	p.ResetAfter = 10 * time.Second
	rec := newRecorder(0)
	probe := oneProbe(h, h.strategy(p), rec)

	crashOnce := func() time.Duration {
		t.Helper()
		f := h.sys.Root.RequestFuture(probe, &crash{fails: 1}, waitLimit)
		d := h.fireTimer()
		if _, err := f.Result(); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := crashOnce(); d != 100*ms {
		t.Fatalf("first restart after %v", d)
	}
	if d := crashOnce(); d != 200*ms {
		t.Fatalf("second restart (200ms after the first crash) after %v", d)
	}
	h.clk.Advance(10*time.Second - 200*ms) // last failure is now exactly ResetAfter ago
	if d := crashOnce(); d != 100*ms {
		t.Fatalf("restart after a calm period took %v, want the minimum 100ms", d)
	}
}

func TestStopCancelsPendingRestart(t *testing.T) {
	h := newHarness(t)
	rec := newRecorder(0)
	s := h.strategy(testPolicy())
	root, err := SpawnRoot(h.sys.Root, "g", children(ChildSpec{Name: "probe", Props: probeProps("probe", rec)}), s, h.reg, h.logger())
	if err != nil {
		t.Fatal(err)
	}
	awaitStarted(t, rec, 1)
	h.sys.Root.Send(h.pid("probe"), &crash{fails: 1})
	h.awaitTimer()
	if s.PendingRestarts() != 1 {
		t.Fatalf("pending restarts %d, want 1", s.PendingRestarts())
	}
	if err := h.sys.Root.StopFuture(root).Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.clk.Pending()); n != 0 || s.PendingRestarts() != 0 {
		t.Fatalf("after stop: %d clock timers, %d pending restarts; want none", n, s.PendingRestarts())
	}
	if st := h.state("probe"); st != Stopped {
		t.Fatalf("probe is %v after its group stopped, want stopped", st)
	}
	h.clk.Advance(time.Hour) // nothing fires into the stopped tree
	if st := h.state("probe"); st != Stopped {
		t.Fatalf("probe is %v after the clock moved on", st)
	}
}
