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

// settings: threshold failures within a 10 s window that are at least
// half its calls; open for 10 s.
func settings(threshold int) Settings {
	return Settings{Threshold: threshold, Rate: 0.5, Window: 10 * s, Timeout: 10 * s}
}

// step: at t0+at, do op with generation gen (-1: the current one); then the
// breaker must be in state, and for allow, allowed must match. With win,
// its window must then hold failures and calls.
type step struct {
	at      time.Duration
	op      string // allow, ok, fail, neutral, threshold, rate, window, timeout, quiet, reset
	gen     int64  // -1: current generation
	arg     time.Duration
	counted bool // record ops: the result counted; allow: allowed
	state   State

	n               int64   // threshold: the new one; quiet: the board's running count
	rate            float64 // rate: the new one
	win             bool
	failures, calls int64
}

func TestBreakerSteps(t *testing.T) {
	cur := int64(-1)
	ms := time.Millisecond
	cases := map[string][]step{
		"an endpoint failing every call opens after threshold calls": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "allow", counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 1 * s, op: "allow", counted: false, state: Open},
			{at: 9 * s, op: "allow", counted: false, state: Open},
		},
		"failures among successes below the rate never open it": {
			// 3 failures (the threshold) and more, but a third of the calls.
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{at: 1 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 1 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 1 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 2 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 2 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 2 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 3 * s, op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 4, calls: 10},
		},
		"failures in a row do not matter, their share does": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open}, // 3 of 4
		},
		"failures spread wider than the window never add up": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{at: 6 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 12 * s, op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 2, calls: 2},
			{at: 18 * s, op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 2, calls: 2},
			{at: 24 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 25 * s, op: "fail", gen: cur, counted: true, state: Open}, // 18, 24, 25: within 10 s
		},
		"a failure a window old has left it": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{at: 500 * ms, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 10 * s, op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 1, calls: 1},
		},
		"a failure just inside the window still counts": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{at: 500 * ms, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 10*s - 1, op: "fail", gen: cur, counted: true, state: Open},
		},
		"a share exactly at the rate opens it": {
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open}, // 3 of 6
		},
		"a share just below the rate does not": {
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 3, calls: 7},
			{op: "fail", gen: cur, counted: true, state: Open}, // 4 of 8
		},
		"successes leave the window too": {
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{at: 9 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 9 * s, op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 2, calls: 5},
			{at: 10 * s, op: "fail", gen: cur, counted: true, state: Open}, // the successes at t0 are gone: 3 of 3
		},
		"quiet successes are calls, spread over the time since the last count": {
			{op: "quiet", n: 100, state: Closed, win: true},      // the starting point: placed nowhere
			{op: "fail", gen: cur, counted: true, state: Closed}, // failures at t0
			{op: "fail", gen: cur, counted: true, state: Closed},
			// 20 s later, 20 more: 1 a second, of which the window's 9 s
			// (t0+11s up to t0+20s) hold 9; the failures at t0 are gone.
			{at: 20 * s, op: "quiet", n: 120, state: Closed, win: true, failures: 0, calls: 9},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 3, calls: 12},
			{at: 20 * s, op: "quiet", n: 120, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Open}, // 9 of 18
		},
		"quiet successes counted while open are dropped": {
			{op: "quiet", n: 0, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 5 * s, op: "quiet", n: 50, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 10 * s, op: "ok", gen: cur, counted: true, state: Closed, win: true, failures: 0, calls: 0},
			// 7 since the last count at t0+5s, spread from the closing at
			// t0+10s on, not from t0+5s: at t0+19s, when the buckets before
			// t0+10s have left the window, all 7 are still in it.
			{at: 12 * s, op: "quiet", n: 57, state: Closed, win: true, failures: 0, calls: 7},
			{at: 19 * s, op: "quiet", n: 57, state: Closed, win: true, failures: 0, calls: 7},
		},
		"the window starts empty when the breaker closes": {
			{arg: 5 * s, op: "timeout", state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 5 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 5 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 6 * s, op: "fail", gen: cur, counted: true, state: Closed, win: true, failures: 1, calls: 1},
			{at: 6 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 6 * s, op: "fail", gen: cur, counted: true, state: Open},
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
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 12 * s, op: "fail", gen: cur, counted: true, state: Open},
			{at: 21 * s, op: "allow", counted: false, state: Open},
			{at: 22 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"results from an older generation are ignored": {
			{op: "threshold", n: 1, state: Closed},
			{op: "allow", counted: true, state: Closed}, // gen 0 call A
			{op: "allow", counted: true, state: Closed}, // gen 0 call B
			{op: "fail", gen: 0, counted: true, state: Open},
			{at: 1 * s, op: "ok", gen: 0, counted: false, state: Open},        // B's late success
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},         // probe, gen 2
			{at: 10 * s, op: "fail", gen: 0, counted: false, state: HalfOpen}, // stale failure
			{at: 10 * s, op: "ok", gen: cur, counted: true, state: Closed},
			{at: 10 * s, op: "fail", gen: 2, counted: false, state: Closed, win: true}, // the probe's gen is over: not in the window
		},
		"a longer Retry-After holds the breaker open": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, arg: 30 * s, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: false, state: Open},
			{at: 29 * s, op: "allow", counted: false, state: Open},
			{at: 30 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a shorter Retry-After does not shorten the timeout": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, arg: 2 * s, counted: true, state: Open},
			{at: 5 * s, op: "allow", counted: false, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a neutral probe frees the slot": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 10 * s, op: "neutral", gen: cur, counted: true, state: HalfOpen},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 10 * s, op: "neutral", gen: 0, counted: false, state: HalfOpen},
		},
		"429 is not a call: it neither adds to the failures nor dilutes them": {
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "neutral", gen: cur, counted: false, state: Closed},
			{op: "neutral", gen: cur, counted: false, state: Closed},
			{op: "neutral", gen: cur, counted: false, state: Closed, win: true, failures: 2, calls: 5},
			{op: "fail", gen: cur, counted: true, state: Open}, // 3 of 6
		},
		"a lost probe is replaced after the timeout": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 19 * s, op: "allow", counted: false, state: HalfOpen},
			{at: 20 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"a lost probe's late result is ignored": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},                // gen 1
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},         // probe A, gen 2
			{at: 20 * s, op: "allow", counted: true, state: HalfOpen},         // A presumed lost: probe B, gen 3
			{at: 20 * s, op: "allow", counted: false, state: HalfOpen},        // still one at a time
			{at: 21 * s, op: "fail", gen: 2, counted: false, state: HalfOpen}, // A's late failure
			{at: 21 * s, op: "ok", gen: 2, counted: false, state: HalfOpen},   // or success
			{at: 22 * s, op: "ok", gen: cur, counted: true, state: Closed},    // B decides
		},
		"a failed probe's Retry-After holds it open longer": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 10 * s, op: "allow", counted: true, state: HalfOpen},
			{at: 10 * s, op: "fail", gen: cur, arg: 25 * s, counted: true, state: Open},
			{at: 34 * s, op: "allow", counted: false, state: Open},
			{at: 35 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"live: a lower threshold opens at once": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{at: 1 * s, op: "threshold", n: 2, state: Open},
			{at: 10 * s, op: "allow", counted: false, state: Open},
			{at: 11 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"live: a higher threshold needs more failures": {
			{op: "threshold", n: 5, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
		},
		"live: a lower rate opens at once": {
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed}, // 3 of 7
			{at: 1 * s, op: "rate", rate: 0.4, state: Open},
		},
		"live: a higher rate needs a larger share": {
			{op: "rate", rate: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed}, // 3 of 4 is not all
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 20 * s, op: "fail", gen: cur, counted: true, state: Open},
		},
		"live: a new window starts afresh and rolls at its own pace": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{at: 1 * s, op: "window", arg: 60 * s, state: Closed, win: true, failures: 0, calls: 0},
			{at: 1 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 31 * s, op: "fail", gen: cur, counted: true, state: Closed},
			{at: 55 * s, op: "fail", gen: cur, counted: true, state: Open}, // three within 60 s
		},
		"live: the same window keeps its counts": {
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{at: 1 * s, op: "window", arg: 10 * s, state: Closed, win: true, failures: 2, calls: 2},
			{at: 1 * s, op: "fail", gen: cur, counted: true, state: Open},
		},
		"live: a new timeout applies to an open breaker": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{at: 2 * s, op: "timeout", arg: 60 * s, state: Open},
			{at: 30 * s, op: "allow", counted: false, state: Open},
			{at: 31 * s, op: "timeout", arg: 5 * s, state: HalfOpen}, // opened 31s ago
			{at: 31 * s, op: "allow", counted: true, state: HalfOpen},
		},
		"reset closes and ignores calls in flight": {
			{op: "threshold", n: 1, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Open},
			{op: "reset", state: Closed},
			{op: "fail", gen: 1, counted: false, state: Closed},
			{op: "allow", counted: true, state: Closed},
		},
		"reset empties the window": {
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "fail", gen: cur, counted: true, state: Closed},
			{op: "ok", gen: cur, counted: true, state: Closed},
			{op: "reset", state: Closed, win: true, failures: 0, calls: 0},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			b := New(settings(3))
			for i, st := range steps {
				now := t0.Add(st.at)
				gen := b.Gen()
				if st.gen >= 0 {
					gen = uint64(st.gen)
				}
				var counted bool
				cfg := b.Settings()
				switch st.op {
				case "allow":
					counted = b.Allow(now).Allowed
				case "ok":
					counted = b.RecordSuccess(now, gen)
				case "fail":
					counted = b.RecordFailure(now, gen, st.arg)
				case "neutral":
					counted = b.RecordNeutral(now, gen)
				case "quiet":
					b.CountQuiet(now, uint64(st.n))
				case "threshold":
					cfg.Threshold = int(st.n)
					b.Configure(now, cfg)
				case "rate":
					cfg.Rate = st.rate
					b.Configure(now, cfg)
				case "window":
					cfg.Window = st.arg
					b.Configure(now, cfg)
				case "timeout":
					cfg.Timeout = st.arg
					b.Configure(now, cfg)
				case "reset":
					b.Reset(now)
				default:
					t.Fatalf("unknown op %q", st.op)
				}
				if counted != st.counted {
					t.Fatalf("step %d (%s at %v): got %v, want %v", i, st.op, st.at, counted, st.counted)
				}
				if b.State() != st.state {
					t.Fatalf("step %d (%s at %v): state %v, want %v", i, st.op, st.at, b.State(), st.state)
				}
				if f, c := b.Window(now); st.win && (f != st.failures || c != st.calls) {
					t.Fatalf("step %d (%s at %v): window holds %d failures in %d calls, want %d in %d", i, st.op, st.at, f, c, st.failures, st.calls)
				}
			}
		})
	}
}

func TestVerdictAndDeadlines(t *testing.T) {
	b := New(settings(1))
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
	b := New(settings(1))
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
	br := New(settings(5))
	b.ReportAllocs()
	for b.Loop() {
		v := br.Allow(t0)
		br.RecordSuccess(t0, v.Gen)
	}
}
