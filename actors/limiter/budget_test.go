package limiter

import (
	"testing"
	"time"
)

// budgetStep is one operation on a Budget over a 10s window (1s slots) and
// what must follow.
type budgetStep struct {
	at time.Duration
	op string // request, retry, window
	n  int
	w  time.Duration // window

	wantOK        bool // retry: granted
	wantRequests  uint64
	wantRetries   uint64
	wantAvailable int
}

func TestBudgetSteps(t *testing.T) {
	cases := map[string][]budgetStep{
		"the floor alone lets a quiet upstream retry": {
			{op: "retry", n: 1, wantOK: true, wantRetries: 1, wantAvailable: 9},
			{op: "retry", n: 9, wantOK: true, wantRetries: 10, wantAvailable: 0},
			{op: "retry", n: 1, wantOK: false, wantRetries: 10, wantAvailable: 0},
		},
		"20% of first attempts on top of the floor": {
			{op: "request", n: 100, wantRequests: 100, wantAvailable: 30},
			{op: "retry", n: 30, wantOK: true, wantRequests: 100, wantRetries: 30, wantAvailable: 0},
			{op: "retry", n: 1, wantOK: false, wantRequests: 100, wantRetries: 30, wantAvailable: 0},
			{op: "request", n: 4, wantRequests: 104, wantRetries: 30, wantAvailable: 0}, // 20% of 104 is 20.8: 20
			{op: "request", n: 1, wantRequests: 105, wantRetries: 30, wantAvailable: 1},
			{op: "retry", n: 2, wantOK: false, wantRequests: 105, wantRetries: 30, wantAvailable: 1}, // all or none
			{op: "retry", n: 0, wantOK: true, wantRequests: 105, wantRetries: 31, wantAvailable: 0},  // 0 means 1
		},
		"counts leave the window 0.9 to 1 window after they were made": {
			{at: 500 * ms, op: "request", n: 50, wantRequests: 50, wantAvailable: 20},
			{at: 500 * ms, op: "retry", n: 20, wantOK: true, wantRequests: 50, wantRetries: 20},
			{at: 3 * s, op: "request", n: 50, wantRequests: 100, wantRetries: 20, wantAvailable: 10},
			{at: 9999 * ms, op: "retry", n: 11, wantOK: false, wantRequests: 100, wantRetries: 20, wantAvailable: 10},
			// At 10s the slot [0, 1s) leaves: its 50 attempts and 20 retries.
			{at: 10 * s, op: "retry", n: 11, wantOK: true, wantRequests: 50, wantRetries: 11, wantAvailable: 9},
			// At 13s the attempts made at 3s leave: 11 retries over the floor of 10.
			{at: 13 * s, op: "retry", n: 1, wantOK: false, wantRequests: 0, wantRetries: 11, wantAvailable: 0},
			{at: 20 * s, op: "retry", n: 10, wantOK: true, wantRequests: 0, wantRetries: 10, wantAvailable: 0},
			{at: 1 * time.Hour, op: "retry", n: 10, wantOK: true, wantRequests: 0, wantRetries: 10, wantAvailable: 0},
		},
		"a refused retry counts nothing": {
			{op: "retry", n: 11, wantOK: false, wantAvailable: 10},
			{op: "retry", n: 10, wantOK: true, wantRetries: 10},
		},
		"a new window keeps the counts, as if made now": {
			{op: "request", n: 100, wantRequests: 100, wantAvailable: 30},
			{op: "retry", n: 5, wantOK: true, wantRequests: 100, wantRetries: 5, wantAvailable: 25},
			{at: 5 * s, op: "window", w: 2 * s, wantRequests: 100, wantRetries: 5, wantAvailable: 25},
			{at: 6800 * ms, op: "retry", n: 1, wantOK: true, wantRequests: 100, wantRetries: 6, wantAvailable: 24},
			// Window 2s (200ms slots): the counts moved to [5s, 5.2s) leave at 7s.
			{at: 7 * s, op: "retry", n: 1, wantOK: true, wantRequests: 0, wantRetries: 2, wantAvailable: 8},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			b := NewBudget(10 * s)
			for i, st := range steps {
				now := at(st.at)
				ok := st.wantOK
				switch st.op {
				case "request":
					b.Request(now, st.n)
				case "retry":
					ok = b.Retry(now, st.n)
				case "window":
					b.SetWindow(now, st.w)
				default:
					t.Fatalf("unknown op %q", st.op)
				}
				if ok != st.wantOK {
					t.Fatalf("step %d (%s at %v): ok %v, want %v", i, st.op, st.at, ok, st.wantOK)
				}
				req, ret := b.Counts(now)
				if req != st.wantRequests || ret != st.wantRetries {
					t.Fatalf("step %d (%s at %v): counts %d requests, %d retries; want %d, %d", i, st.op, st.at, req, ret, st.wantRequests, st.wantRetries)
				}
				if a := b.Available(now); a != st.wantAvailable {
					t.Fatalf("step %d (%s at %v): available %d, want %d", i, st.op, st.at, a, st.wantAvailable)
				}
			}
		})
	}
}

func TestBudgetWindow(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{
		{60 * s, 60 * s}, {0, s}, {-s, s}, {5 * ms, 10 * ms}, // slots of at least 1ms
	} {
		if got := NewBudget(c.in).Window(); got != c.want {
			t.Errorf("NewBudget(%v).Window() = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestBudgetBoundsAmplification: an outage where every call fails and is
// retried up to 3 times; the retries stay within 20% of the first attempts
// plus the floor, per window, whatever the pace.
func TestBudgetBoundsAmplification(t *testing.T) {
	b := NewBudget(60 * s)
	var first, retried int
	for now := t0; now.Before(t0.Add(10 * time.Minute)); now = now.Add(10 * ms) { // 100 first attempts/s
		b.Request(now, 1)
		first++
		for range 3 {
			if !b.Retry(now, 1) {
				break
			}
			retried++
		}
		if req, ret := b.Counts(now); ret > req*RetryPercent/100+RetryFloor {
			t.Fatalf("at %v: %d retries over %d first attempts in the window", now.Sub(t0), ret, req)
		}
	}
	if amp := float64(first+retried) / float64(first); amp > 1.21 || amp < 1.19 {
		t.Fatalf("traffic multiplied by %.3f, want about 1.2", amp)
	}
}
