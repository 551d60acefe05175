package breaker

import (
	"testing"
	"time"
)

// Another node's opening opens a closed breaker until that node's probe
// is due, not for a full timeout of its own; it is not counted as one of
// this node's openings; a call of ours in flight no longer counts.
func TestAdoptOpenHoldsUntilTheOtherNodesProbe(t *testing.T) {
	b := New(settings(3))
	v := b.Allow(t0)
	if !b.Adopt(t0.Add(s), Open, 4*s) {
		t.Fatal("Adopt(open) changed nothing")
	}
	if b.State() != Open || !b.Remote() || b.Opens() != 0 {
		t.Fatalf("state %v remote %v opens %d", b.State(), b.Remote(), b.Opens())
	}
	if b.RecordSuccess(t0.Add(2*s), v.Gen) {
		t.Fatal("a call from before the opening counted")
	}
	if got := b.RetryIn(t0.Add(2 * s)); got != 3*s {
		t.Fatalf("RetryIn = %v, want 3s (the other node's)", got)
	}
	b.Advance(t0.Add(5 * s))
	if b.State() != HalfOpen || b.Remote() {
		t.Fatalf("at the other node's probe time: %v remote %v", b.State(), b.Remote())
	}
}

// Two nodes that tripped together agree on the later reopen time: an
// earlier remote opening does not shorten ours, a later one extends it.
func TestAdoptOpenKeepsTheLaterReopen(t *testing.T) {
	b := New(settings(1))
	b.RecordFailure(t0, b.Allow(t0).Gen, 0) // ours: open until t0+10s
	if b.Adopt(t0.Add(s), Open, 2*s) {
		t.Fatal("an earlier remote reopen shortened ours")
	}
	if got := b.RetryIn(t0.Add(s)); got != 9*s {
		t.Fatalf("RetryIn = %v, want 9s", got)
	}
	if !b.Adopt(t0.Add(s), Open, 20*s) || b.RetryIn(t0.Add(s)) != 20*s {
		t.Fatalf("a later remote reopen was not taken: RetryIn %v", b.RetryIn(t0.Add(s)))
	}
}

// Another node's successful probe closes an open or half_open breaker with
// an empty window; a closed one stays as it is.
func TestAdoptClosed(t *testing.T) {
	b := New(settings(1))
	if b.Adopt(t0, Closed, 0) {
		t.Fatal("closing a closed breaker changed it")
	}
	b.RecordFailure(t0, b.Allow(t0).Gen, 0)
	b.Advance(t0.Add(10 * s))
	if b.State() != HalfOpen {
		t.Fatalf("state %v, want half_open", b.State())
	}
	if !b.Adopt(t0.Add(11*s), Closed, 0) || b.State() != Closed {
		t.Fatalf("state %v, want closed", b.State())
	}
	if f, c := b.Window(t0.Add(11 * s)); f != 0 || c != 0 {
		t.Fatalf("window %d/%d, want empty", f, c)
	}
}

// A probe taken back because another node holds the cluster's probe is
// out: nobody here probes, its grant's result does not count, and should
// the other node go silent, this one may probe once the timeout passed.
func TestProbeElsewhere(t *testing.T) {
	b := New(settings(1))
	b.RecordFailure(t0, b.Allow(t0).Gen, 0)
	at := t0.Add(10 * s)
	v := b.Allow(at)
	if !v.Allowed || v.State != HalfOpen {
		t.Fatalf("verdict %+v, want the probe", v)
	}
	b.ProbeElsewhere(at)
	if b.RecordSuccess(at.Add(time.Millisecond), v.Gen) {
		t.Fatal("the taken-back probe's result counted")
	}
	if v := b.Allow(at.Add(s)); v.Allowed {
		t.Fatalf("a second probe went while the other node's is out: %+v", v)
	}
	if v := b.Allow(at.Add(10 * s)); !v.Allowed || v.State != HalfOpen {
		t.Fatalf("after the timeout with no word from the other node: %+v, want a probe", v)
	}
}
