package supervisor

import (
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// fakeSupervisor records what a Strategy asks of the supervising actor.
type fakeSupervisor struct {
	mu        sync.Mutex
	restarted []string
	stopped   []string
	escalated []any
}

func (f *fakeSupervisor) Children() []*actor.PID { return nil }
func (f *fakeSupervisor) EscalateFailure(reason, _ any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.escalated = append(f.escalated, reason)
}
func (f *fakeSupervisor) RestartChildren(pids ...*actor.PID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range pids {
		f.restarted = append(f.restarted, p.Id)
	}
}
func (f *fakeSupervisor) StopChildren(pids ...*actor.PID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range pids {
		f.stopped = append(f.stopped, p.Id)
	}
}
func (f *fakeSupervisor) ResumeChildren(...*actor.PID) {}

func TestStrategyResetForgetStop(t *testing.T) {
	h := newHarness(t)
	s := h.strategy(testPolicy())
	sup := &fakeSupervisor{}
	a, b := actor.NewPID("nonhost", "g/a"), actor.NewPID("nonhost", "g/b")
	h.reg.Register("a", "g", a)
	fail := func(pid *actor.PID) {
		s.HandleFailure(h.sys, sup, pid, nil, "boom", &actor.Started{})
	}

	fail(a)
	h.clk.Advance(h.clk.Pending()[0])
	fail(a)
	if d := h.clk.Pending(); len(d) != 1 || d[0] != 2*testPolicy().MinBackoff {
		t.Fatalf("second failure pending %v, want [200ms]", d)
	}
	if st := h.state("a"); st != Restarting {
		t.Fatalf("a is %v, want restarting", st)
	}

	// Reset: pending restarts cancelled, history gone.
	s.Reset()
	if n := len(h.clk.Pending()); n != 0 || s.PendingRestarts() != 0 {
		t.Fatalf("after Reset: %d timers, %d pending", n, s.PendingRestarts())
	}
	fail(a)
	if d := h.clk.Pending(); len(d) != 1 || d[0] != testPolicy().MinBackoff {
		t.Fatalf("first failure after Reset pending %v, want [100ms]", d)
	}

	// Forget cancels one child only; an unregistered child goes by its PID.
	fail(b)
	s.Forget(a)
	if s.PendingRestarts() != 1 {
		t.Fatalf("after Forget(a): %d pending, want b's", s.PendingRestarts())
	}
	if got := h.counter("deer_actor_restarts_total", "g/b"); got != 1 {
		t.Fatalf("restarts_total{g/b} = %d, want 1", got)
	}

	// Stop: nothing fires any more, and a late failure stops the child.
	s.Stop()
	h.clk.Advance(time.Hour)
	fail(a)
	sup.mu.Lock()
	defer sup.mu.Unlock()
	if len(sup.restarted) != 1 || sup.restarted[0] != "g/a" {
		t.Fatalf("restarted %v, want only the first restart of g/a", sup.restarted)
	}
	if len(sup.stopped) != 1 || sup.stopped[0] != "g/a" {
		t.Fatalf("stopped %v, want g/a after Stop", sup.stopped)
	}
	if len(h.clk.Pending()) != 0 {
		t.Fatalf("timers pending after Stop: %v", h.clk.Pending())
	}
}

func TestStrategyEscalationCarriesReason(t *testing.T) {
	h := newHarness(t)
	p := testPolicy()
	p.MaxRestarts = 1
	s := h.strategy(p)
	sup := &fakeSupervisor{}
	c := actor.NewPID("nonhost", "g/c")
	h.reg.Register("c", "g", c)
	s.HandleFailure(h.sys, sup, c, nil, "first", &actor.Started{})
	s.HandleFailure(h.sys, sup, c, nil, "second", &actor.Started{})
	if len(sup.escalated) != 1 {
		t.Fatalf("escalated %v, want once", sup.escalated)
	}
	e, ok := sup.escalated[0].(*Escalation)
	if !ok || e.Child != "c" || e.Recent != 2 || e.Reason != "second" {
		t.Fatalf("escalation reason %#v", sup.escalated[0])
	}
	if want := "c failed 2 times within the restart window: second"; e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	if entry, _ := h.reg.Get("c"); entry.State != Restarting || entry.Restarts != 1 || entry.LastFailure != "second" {
		t.Fatalf("registry entry %+v", entry)
	}
	if n := h.reg.Escalations(); n != 1 {
		t.Fatalf("registry counts %d escalations, want 1", n)
	}
}
