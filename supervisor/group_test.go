package supervisor

import (
	"sync/atomic"
	"testing"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/messages"
)

// nested builds root → group "workers" → probe "worker/1". The group's
// strategy allows 2 restarts per minute; the root's restarts the group
// after 50ms.
func nested(h *harness, rec *recorder, opts ...Option) (groupStrategy *Strategy) {
	p := testPolicy()
	p.MaxRestarts = 2
	p.MaxRedeliveries = 10
	groupStrategy = h.strategy(p, opts...)
	rootPolicy := testPolicy()
	rootPolicy.MinBackoff = 50 * ms
	workers := GroupProps("workers", children(ChildSpec{Name: "worker/1", Props: probeProps("worker/1", rec)}), groupStrategy, h.reg, h.logger())
	h.spawnRoot("root", children(ChildSpec{Name: "workers", Props: workers}), h.strategy(rootPolicy))
	return groupStrategy
}

func TestIntensityExceededRestartsGroup(t *testing.T) {
	h := newHarness(t)
	rec := newRecorder(0)
	gaveUp := make(chan GiveUp, 1)
	nested(h, rec, WithGiveUp(func(g GiveUp) { gaveUp <- g }))
	awaitStarted(t, rec, 1)
	workersPID := h.pid("workers")
	if pong := h.ping(workersPID); pong.Actor != "workers" {
		t.Fatalf("group answered %+v", pong)
	}

	msg := &crash{fails: 1 << 30}
	f := h.sys.Root.RequestFuture(h.pid("worker/1"), msg, waitLimit)
	if d := h.fireTimer(); d != 100*ms { // failure 1: restarted by the group
		t.Fatalf("first restart after %v", d)
	}
	if d := h.fireTimer(); d != 200*ms { // failure 2: restarted by the group
		t.Fatalf("second restart after %v", d)
	}
	// Failure 3 exceeds 2 per minute: the group escalates, the root
	// schedules a restart of the whole group.
	if d := h.awaitTimer(); d != 50*ms {
		t.Fatalf("group restart scheduled after %v, want the root's 50ms", d)
	}
	if st := h.state("workers"); st != Restarting {
		t.Fatalf("workers is %v while its restart is pending", st)
	}
	if st := h.state("worker/1"); st != Restarting {
		t.Fatalf("worker/1 is %v after escalating", st)
	}
	// The message cannot be redelivered into the dying subtree: its
	// requester hears so at once.
	res, err := f.Result()
	if err != nil {
		t.Fatal(err)
	}
	if df, ok := res.(*messages.DeliveryFailed); !ok || df.Attempts != 3 || df.Message != msg {
		t.Fatalf("requester got %#v, want DeliveryFailed", res)
	}
	if g := <-gaveUp; !g.Escalated {
		t.Fatalf("give-up %+v should say escalated", g)
	}
	awaitStarted(t, rec, 2)
	awaitStarted(t, rec, 3)

	h.clk.Advance(50 * ms)
	// The group restarted: its child was stopped and spawned afresh.
	awaitStarted(t, rec, 4)
	actortest.Eventually(h.t, "worker/1 runs again", func() bool { return h.state("worker/1") == Running })
	if pong := h.ping(h.pid("worker/1")); pong.Actor != "worker/1" {
		t.Fatalf("respawned child answered %+v", pong)
	}
	if pong := h.ping(workersPID); pong.Actor != "workers" {
		t.Fatalf("restarted group answered %+v", pong)
	}
	e, _ := h.reg.Get("workers")
	if e.State != Running || e.Restarts != 1 {
		t.Fatalf("workers entry %+v, want running after 1 restart", e)
	}
	w, _ := h.reg.Get("worker/1")
	if w.Restarts != 2 {
		t.Fatalf("worker/1 restarts %d, want 2 (the third failure was escalated)", w.Restarts)
	}
	if got := h.counter("deer_actor_restarts_total", "workers"); got != 1 {
		t.Errorf("restarts_total{workers} = %d, want 1", got)
	}
	if got := h.counter("deer_actor_escalations_total", "worker/1"); got != 1 {
		t.Errorf("escalations_total{worker/1} = %d, want 1", got)
	}
	if got := h.counter("deer_actor_redeliveries_total", "workers"); got != 0 {
		t.Errorf("the escalated message was redelivered to the group %d times", got)
	}
	if n := rec.delivered(msg); n != 3 {
		t.Errorf("message delivered %d times, want 3", n)
	}

	// The restarted group's history starts afresh: the next failure is
	// restarted from the minimum backoff, not escalated.
	h.sys.Root.Send(h.pid("worker/1"), &crash{fails: 1})
	if d := h.fireTimer(); d != 100*ms {
		t.Fatalf("first restart after the group restart took %v", d)
	}
	awaitStarted(t, rec, 5)
}

func TestPanicInStartedEscalates(t *testing.T) {
	h := newHarness(t)
	rec := newRecorder(3) // incarnations 1–3 panic in Started
	nested(h, rec)

	if d := h.fireTimer(); d != 100*ms { // incarnation 1 failed
		t.Fatalf("first restart after %v", d)
	}
	if d := h.fireTimer(); d != 200*ms { // incarnation 2 failed
		t.Fatalf("second restart after %v", d)
	}
	if d := h.fireTimer(); d != 50*ms { // incarnation 3 failed: escalated, the root restarts the group
		t.Fatalf("group restart after %v", d)
	}
	awaitStarted(t, rec, 4)
	actortest.Eventually(h.t, "worker/1 runs again", func() bool { return h.state("worker/1") == Running })
	h.ping(h.pid("worker/1"))
	if e, _ := h.reg.Get("workers"); e.Restarts != 1 || e.State != Running {
		t.Fatalf("workers entry %+v, want running after 1 restart", e)
	}
	if e, _ := h.reg.Get("worker/1"); e.LastFailure != "worker/1: start 3" {
		t.Fatalf("worker/1 last failure %q", e.LastFailure)
	}
	if got := h.counter("deer_actor_redeliveries_total", "worker/1"); got != 0 {
		t.Errorf("Started was redelivered %d times", got)
	}
	if n := len(h.clk.Pending()); n != 0 {
		t.Errorf("%d timers left pending", n)
	}
}

func TestGroupRespawnsFromCurrentSpecs(t *testing.T) {
	h := newHarness(t)
	recA, recB := newRecorder(0), newRecorder(0)
	var specs atomic.Pointer[[]ChildSpec]
	specs.Store(&[]ChildSpec{{Name: "a", Props: probeProps("a", recA)}})
	p := testPolicy()
	p.MaxRestarts = 0 // every child failure escalates
	inner := GroupProps("inner", func() []ChildSpec { return *specs.Load() }, h.strategy(p), h.reg, h.logger())
	h.spawnRoot("root", children(ChildSpec{Name: "inner", Props: inner}), h.strategy(testPolicy()))
	awaitStarted(t, recA, 1)

	// The configuration changes; the next restart of the group builds the
	// children in force then.
	specs.Store(&[]ChildSpec{{Name: "b", Props: probeProps("b", recB)}})
	h.sys.Root.Send(h.pid("a"), &crash{fails: 1})
	if d := h.fireTimer(); d != 100*ms {
		t.Fatalf("group restart after %v", d)
	}
	awaitStarted(t, recB, 1)
	actortest.Eventually(h.t, "b is registered", func() bool { _, ok := h.reg.Get("b"); return ok })
	h.ping(h.pid("b"))
	if _, ok := h.reg.Get("a"); ok {
		t.Fatal("a, no longer specified, is still registered")
	}
	if e, _ := h.reg.Get("b"); e.Group != "inner" || e.State != Running {
		t.Fatalf("b entry %+v", e)
	}
}
