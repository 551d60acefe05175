package breaker

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const s = time.Second

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{Closed: "closed", HalfOpen: "half_open", Open: "open", State(9): "unknown"} {
		if st.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(st), st.String(), want)
		}
	}
}

// step: at t0+at, do op with generation gen (-1: the current one); then the
// breaker must be in state, and for allow, allowed must match.
type step struct {
	at      time.Duration
	op      string // allow, ok, fail, neutral, threshold, timeout, reset, advance
	gen     int64  // -1: current generation
	arg     time.Duration
	counted bool // record ops: the result counted; allow: allowed
	state   State
}

func TestBreakerSteps(t *testing.T) {
	cur := int64(-1)
	cases := map[string][]step{
		"opens at the threshold of consecutive failures": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed}, // resets the count
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "allow", counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 1 * s, op: "allow", counted: false, state: Open},
			{at: 9 * s, op: "allow", counted: false, state: Open},
		},
		"one probe after the timeout; success closes": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen}, // the probe
			{at: 10 * s, op: "allow", counted: false, state: HalfOpen},
			{at: 11 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 11 * s, op: "allow", counted: true, state: Closed},
		},
		"probe failure reopens for another timeout": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 12 * s, op: "fail", gen: cur, counted: true, state: Open},
			{at: 21 * s, op: "allow", counted: false, state: Open},
			{at: 22 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"results from an older generation are ignored": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "allow", counted: true, state: Closed}, // gen 0 call A
			{op: "allow", counted: true, state: Closed}, // gen 0 call B
			{op: "fail", gen: 0, counted: true, state: Open},
			{at: 1 * s, op: "ok", gen: 0, counted: false, state: Open},        // B's late success
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},         // probe, gen 2
			{at: 10 * s, op: "fail", gen: 0, counted: false, state: HalfOpen}, // stale failure
			{at: 10 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 10 * s, op: "fail", gen: 2, counted: false, state: Closed}, // the probe's gen is over
		},
		"a longer Retry-After holds the breaker open": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, arg: 30 * s, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: false, state: Open},
			{at: 29 * s, op: "allow", counted: false, state: Open},
			{at: 30 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a shorter Retry-After does not shorten the timeout": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, arg: 2 * s, counted: true, state: Open},
			{at: 5 * s, op: "allow", counted: false, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a neutral probe frees the slot": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 10 * s, op: "neutral", gen: cur, counted: true, state: HalfOpen},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 10 * s, op: "neutral", gen: 0, counted: false, state: HalfOpen},
		},
		"neutral results in closed count nothing": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "neutral", gen: cur, counted: false, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open}, // still consecutive
		},
		"a lost probe is replaced after the timeout": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 19 * s, op: "allow", counted: false, state: HalfOpen},
			{at: 20 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a lost probe's late result is ignored": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},                // gen 1
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},         // probe A, gen 2
			{at: 20 * s, op: "allow", counted: true, state: HalfOpen},         // A presumed lost: probe B, gen 3
			{at: 20 * s, op: "allow", counted: false, state: HalfOpen},        // still one at a time
			{at: 21 * s, op: "fail", gen: 2, counted: false, state: HalfOpen}, // A's late failure
			{at: 21 * s, op: "ok", gen: 2, counted: false, state: HalfOpen},   // or success
			{at: 22 * s, op: "ok", gen: cur, counted: true, state: Closed},    // B decides
		},
		"429 neither resets nor counts; a success resets": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "neutral", gen: cur, counted: false, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "neutral", gen: cur, counted: false, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
		},
		"a failed probe's Retry-After holds it open longer": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 10 * s, op: "fail", gen: cur, arg: 25 * s, counted: true, state: Open},
			{at: 34 * s, op: "allow", counted: false, state: Open},
			{at: 35 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a lower threshold opens at once": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{at: 1 * s, op: "threshold", arg: 2, state: Open},
			{at: 10 * s, op: "allow", counted: false, state: Open},
			{at: 11 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a new timeout applies to an open breaker": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 2 * s, op: "timeout", arg: 60 * s, state: Open},
			{at: 30 * s, op: "allow", counted: false, state: Open},
			{at: 31 * s, op: "timeout", arg: 5 * s, state: HalfOpen}, // opened 31s ago
			{at: 31 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"reset closes and ignores calls in flight": {
			{op: "threshold", arg: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{op: "reset", state: Closed},
			{op: "fail", gen: 1, counted: false, state: Closed},
			{op: "allow", counted: true, state: Closed},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			b := New(3, 10*s)
			for i, st := range steps {
				now := t0.Add(st.at)
				gen := b.Gen()
				if st.gen >= 0 {
					gen = uint64(st.gen)
				}
				var counted bool
				switch st.op {
				case "allow":
					counted = b.Allow(now).Allowed
				case "ok":
					counted = b.RecordSuccess(now, gen)
				case "fail":
					counted = b.RecordFailure(now, gen, st.arg)
				case "neutral":
					counted = b.RecordNeutral(now, gen)
				case "threshold":
					b.SetThreshold(now, int(st.arg))
				case "timeout":
					b.SetTimeout(now, st.arg)
				case "reset":
					b.Reset()
				default:
					t.Fatalf("unknown op %q", st.op)
				}
				if counted != st.counted {
					t.Fatalf("step %d (%s at %v): got %v, want %v", i, st.op, st.at, counted, st.counted)
				}
				if b.State() != st.state {
					t.Fatalf("step %d (%s at %v): state %v, want %v", i, st.op, st.at, b.State(), st.state)
				}
			}
		})
	}
}

func TestVerdictAndDeadlines(t *testing.T) {
	b := New(1, 10*s)
	if _, ok := b.Deadline(); ok {
		t.Fatal("closed breaker has a deadline")
	}
	v := b.Allow(t0)
	b.RecordFailure(t0, v.Gen, 0)
	if d, ok := b.Deadline(); !ok || !d.Equal(t0.Add(10*s)) {
		t.Fatalf("deadline %v %v, want t0+10s", d, ok)
	}
	v = b.Allow(t0.Add(4 * s))
	if v.Allowed || v.State != Open || v.RetryIn != 6*s || v.Gen != 1 {
		t.Fatalf("verdict %+v", v)
	}
	if b.RetryIn(t0.Add(4*s)) != 6*s || b.Opens() != 1 || b.Failures() != 1 {
		t.Fatalf("retry in %v opens %d failures %d", b.RetryIn(t0.Add(4*s)), b.Opens(), b.Failures())
	}
	b.Advance(t0.Add(10 * s))
	if b.State() != HalfOpen {
		t.Fatalf("state %v after the timeout", b.State())
	}
	probe := b.Allow(t0.Add(12 * s))
	if d, ok := b.Deadline(); !ok || !d.Equal(t0.Add(22*s)) || !probe.Allowed || probe.Gen != 2 {
		t.Fatalf("probe %+v deadline %v %v, want t0+22s", probe, d, ok)
	}
}

// OpenUntil is what the board publishes: when a probe may go next.
func TestOpenUntil(t *testing.T) {
	b := New(1, 10*s)
	until := func(want time.Time) {
		t.Helper()
		if got := b.OpenUntil(); !got.Equal(want) {
			t.Fatalf("%v: OpenUntil %v, want %v", b.State(), got, want)
		}
	}
	until(time.Time{}) // closed
	b.RecordFailure(t0, b.Allow(t0).Gen, 0)
	until(t0.Add(10 * s))
	if b.ReopenedByProbe() {
		t.Fatal("opened by failures in closed, reported as by a probe")
	}
	b.Advance(t0.Add(10 * s))
	until(time.Time{}) // half_open, no probe out: now
	probe := b.Allow(t0.Add(11 * s))
	until(t0.Add(21 * s)) // the probe is out until then
	b.RecordFailure(t0.Add(12*s), probe.Gen, 40*s)
	until(t0.Add(52 * s)) // reopened, held by Retry-After
	if !b.ReopenedByProbe() {
		t.Fatal("reopened by the probe, not reported")
	}
}

// The core's cost, for docs/benchmarks.md (the actor adds a mailbox round
// trip; the board avoids both for calls through a closed breaker).
func BenchmarkBreakerAllow(b *testing.B) {
	br := New(5, 10*s)
	b.ReportAllocs()
	for b.Loop() {
		v := br.Allow(t0)
		br.RecordSuccess(t0, v.Gen)
	}
}
