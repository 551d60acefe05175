package limiter

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const ms, s = time.Millisecond, time.Second

// base: rate 10/s between 1 and 100, factor 2, window 60s, depth 5.
var base = Settings{InitialRate: 10, MinRate: 1, MaxRate: 100, AdaptationFactor: 2, Window: 60 * s, Burst: 5}

// step is one operation on a bucket and what must follow.
type step struct {
	at   time.Duration
	op   string // allow, demand, wait, observe, configure, setrate, seed, ceiling
	n    int    // allow: tokens; seed: accepted calls recorded
	out  Outcome
	set  Settings
	rate float64 // for setrate

	wantOK   bool          // allow: granted; observe/configure/setrate: rate changed
	wantWait time.Duration // wait
	wantRate float64
	wantCeil float64 // ceiling: the ceiling (0: none)
}

// Ops beyond the Bucket's methods:
//   - demand: take every token, then be refused one (a caller waits);
//   - seed: record n accepted calls in the measuring window, without the
//     adaptation an Observe would run (to set up the estimate);
//   - ceiling: check the ceiling.
func run(t *testing.T, steps []step) {
	t.Helper()
	b := NewBucket(t0, base)
	for i, st := range steps {
		now := at(st.at)
		var ok bool
		switch st.op {
		case "allow":
			ok = b.Allow(now, st.n)
		case "demand":
			for b.Allow(now, 1) {
			}
		case "wait":
			if w := b.Wait(now, st.n); w != st.wantWait {
				t.Fatalf("step %d (%s at %v): wait %v, want %v", i, st.op, st.at, w, st.wantWait)
			}
			ok = st.wantOK
		case "observe":
			_, ok = b.Observe(now, st.out)
		case "configure":
			_, ok = b.Configure(now, st.set)
		case "setrate":
			_, ok = b.SetRate(now, st.rate)
		case "seed":
			for range st.n {
				b.accepted.add(now)
			}
			ok = st.wantOK
		case "ceiling":
			if c := b.Ceiling(); math.Abs(c-st.wantCeil) > 1e-9 {
				t.Fatalf("step %d (%s at %v): ceiling %v, want %v", i, st.op, st.at, c, st.wantCeil)
			}
			ok = st.wantOK
		default:
			t.Fatalf("unknown op %q", st.op)
		}
		if ok != st.wantOK {
			t.Fatalf("step %d (%s at %v): ok %v, want %v", i, st.op, st.at, ok, st.wantOK)
		}
		if r := b.Rate(); math.Abs(r-st.wantRate) > 1e-9 {
			t.Fatalf("step %d (%s at %v): rate %v, want %v", i, st.op, st.at, r, st.wantRate)
		}
	}
}

var (
	ok429   = Outcome{Status: 429}
	ok200   = Outcome{Status: 200}
	busy503 = Outcome{Status: 503}
)

func TestBucketSteps(t *testing.T) {
	cases := map[string][]step{
		"burst then refill at the rate": {
			{op: "allow", n: 1, wantOK: true, wantRate: 10},
			{op: "allow", n: 4, wantOK: true, wantRate: 10},
			{op: "allow", n: 1, wantOK: false, wantRate: 10},
			{op: "wait", n: 1, wantWait: 100 * ms, wantRate: 10},
			{op: "wait", n: 3, wantWait: 300 * ms, wantRate: 10},
			{at: 99 * ms, op: "allow", n: 1, wantOK: false, wantRate: 10},
			{at: 100 * ms, op: "allow", n: 1, wantOK: true, wantRate: 10},
			{at: 10 * s, op: "allow", n: 5, wantOK: true, wantRate: 10}, // never more than the depth
			{at: 10 * s, op: "allow", n: 1, wantOK: false, wantRate: 10},
		},
		"a request above the depth takes the whole bucket": {
			{op: "allow", n: 50, wantOK: true, wantRate: 10},
			{op: "wait", n: 50, wantWait: 500 * ms, wantRate: 10},
		},
		// No caller waited: no estimate of the capacity, so each cut is by
		// the factor and the ceiling is where it lands.
		"throttles cut by the factor once per cooldown, not below min": {
			{op: "observe", out: ok429, wantOK: true, wantRate: 5},
			{op: "ceiling", wantCeil: 5, wantRate: 5},
			{at: 999 * ms, op: "observe", out: busy503, wantOK: false, wantRate: 5},
			{at: 1 * s, op: "observe", out: Outcome{Status: 500, Overload: true}, wantOK: true, wantRate: 2.5},
			{at: 2 * s, op: "observe", out: ok429, wantOK: true, wantRate: 1.25},
			{at: 3 * s, op: "observe", out: ok429, wantOK: true, wantRate: 1},
			{at: 4 * s, op: "observe", out: ok429, wantOK: false, wantRate: 1},
			{at: 5 * s, op: "observe", out: Outcome{Status: 500}, wantOK: false, wantRate: 1}, // a plain 500 is no rate signal
		},
		"retry-after pauses grants, keeps at most one token and earns none": {
			{op: "observe", out: Outcome{Status: 429, RetryAfter: 3 * s}, wantOK: true, wantRate: 5},
			{op: "wait", n: 1, wantWait: 3 * s, wantRate: 5},
			{op: "wait", n: 2, wantWait: 3*s + 200*ms, wantRate: 5}, // one token kept, the next earned after the pause
			{at: 2999 * ms, op: "allow", n: 1, wantOK: false, wantRate: 5},
			{at: 3 * s, op: "allow", n: 1, wantOK: true, wantRate: 5},
			{at: 3 * s, op: "allow", n: 1, wantOK: false, wantRate: 5},
			{at: 3200 * ms, op: "allow", n: 1, wantOK: true, wantRate: 5},
		},
		"demand and success raise the rate by the factor once per step, not above max": {
			{op: "demand", wantRate: 10},
			{at: 249 * ms, op: "observe", out: ok200, wantOK: false, wantRate: 10}, // step not over
			{at: 250 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 20},
			{at: 400 * ms, op: "observe", out: ok200, wantOK: false, wantRate: 20}, // step not over
			{at: 600 * ms, op: "observe", out: ok200, wantOK: false, wantRate: 20}, // demand is 600ms old
			{at: 600 * ms, op: "demand", wantRate: 20},
			{at: 600 * ms, op: "observe", out: Outcome{Status: 404}, wantOK: true, wantRate: 40}, // accepted, if not ok
			{at: 850 * ms, op: "demand", wantRate: 40},
			{at: 850 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 80},
			{at: 1100 * ms, op: "demand", wantRate: 80},
			{at: 1100 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 100},
			{at: 1350 * ms, op: "demand", wantRate: 100},
			{at: 1350 * ms, op: "observe", out: ok200, wantOK: false, wantRate: 100},
		},
		// With callers waiting and 27 calls accepted in the 900ms the
		// window covers at 1s, the estimate is 30/s.
		"a cut lands on the accepted rate": {
			{op: "setrate", rate: 80, wantOK: true, wantRate: 80},
			{op: "demand", wantRate: 80},
			{at: 500 * ms, op: "seed", n: 27, wantRate: 80},
			{at: 1 * s, op: "observe", out: ok429, wantOK: true, wantRate: 30},
			{at: 1 * s, op: "ceiling", wantCeil: 30, wantRate: 30},
		},
		"a cut is at most the factor squared": {
			{op: "setrate", rate: 80, wantOK: true, wantRate: 80},
			{op: "demand", wantRate: 80},
			{at: 500 * ms, op: "seed", n: 10, wantRate: 80}, // 11.1/s
			{at: 1 * s, op: "observe", out: ok429, wantOK: true, wantRate: 20},
			{at: 1 * s, op: "ceiling", wantCeil: 20, wantRate: 20},
		},
		"no estimate when no caller waited": {
			{op: "setrate", rate: 80, wantOK: true, wantRate: 80},
			{at: 500 * ms, op: "seed", n: 27, wantRate: 80},
			{at: 1 * s, op: "observe", out: ok429, wantOK: true, wantRate: 40},
			{at: 1 * s, op: "ceiling", wantCeil: 40, wantRate: 40},
		},
		"no estimate from fewer than 10 calls": {
			{op: "setrate", rate: 80, wantOK: true, wantRate: 80},
			{op: "demand", wantRate: 80},
			{at: 500 * ms, op: "seed", n: 9, wantRate: 80},
			{at: 1 * s, op: "observe", out: ok429, wantOK: true, wantRate: 40},
			{at: 1 * s, op: "ceiling", wantCeil: 40, wantRate: 40},
		},
		// Factor 1.2 here. Throttled at 55 with 50/s accepted: the ceiling
		// is 50, the cut goes a factor below the rate, to 45.83.
		"recover, hold, probe, clear the ceiling": {
			{op: "configure", set: with(func(s *Settings) { s.AdaptationFactor = 1.2 }), wantRate: 10},
			{op: "setrate", rate: 55, wantOK: true, wantRate: 55},
			{op: "demand", wantRate: 55},
			{at: 500 * ms, op: "seed", n: 45, wantRate: 55}, // 50/s at 1s
			{at: 1 * s, op: "observe", out: ok429, wantOK: true, wantRate: 55 / 1.2},
			{at: 1 * s, op: "ceiling", wantCeil: 50, wantRate: 55 / 1.2},
			{at: 1 * s, op: "demand", wantRate: 55 / 1.2},
			{at: 1009 * ms, op: "observe", out: ok200, wantOK: false, wantRate: 55 / 1.2}, // RecoverStep not over
			{at: 1010 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 50},        // back to the ceiling
			// Hold for ProbeCalls/ceiling = 1s at the ceiling.
			{at: 1900 * ms, op: "demand", wantRate: 50},
			{at: 2009 * ms, op: "observe", out: ok200, wantOK: false, wantRate: 50},
			{at: 2010 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 50.5}, // probe +1%
			{at: 2260 * ms, op: "demand", wantRate: 50.5},
			{at: 2260 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 51}, // +1%
			{at: 2510 * ms, op: "demand", wantRate: 51},
			{at: 2510 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 51.5}, // +1%
			{at: 2760 * ms, op: "demand", wantRate: 51.5},
			{at: 2760 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 52}, // +1%
			{at: 3010 * ms, op: "demand", wantRate: 52},
			{at: 3010 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 53}, // +2%
			{at: 3260 * ms, op: "demand", wantRate: 53},
			{at: 3260 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 55}, // +4%
			{at: 3510 * ms, op: "demand", wantRate: 55},
			{at: 3510 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 59}, // +8%: 18% above
			{at: 3510 * ms, op: "ceiling", wantCeil: 50, wantRate: 59},
			{at: 3760 * ms, op: "demand", wantRate: 59},
			{at: 3760 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 67}, // +16%: past 50*1.2
			{at: 3760 * ms, op: "ceiling", wantCeil: 0, wantRate: 67},              // forgotten
			{at: 4010 * ms, op: "demand", wantRate: 67},
			{at: 4010 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 67 * 1.2}, // multiplicative again
		},
		// Factor 1.2; ceiling 50 learned at 1s as above, rate back at it.
		"a throttle while probing keeps the ceiling; one at it lowers it": {
			{op: "configure", set: with(func(s *Settings) { s.AdaptationFactor = 1.2 }), wantRate: 10},
			{op: "setrate", rate: 55, wantOK: true, wantRate: 55},
			{op: "demand", wantRate: 55},
			{at: 500 * ms, op: "seed", n: 45, wantRate: 55},
			{at: 1 * s, op: "observe", out: ok429, wantOK: true, wantRate: 55 / 1.2},
			{at: 1 * s, op: "demand", wantRate: 55 / 1.2},
			{at: 1010 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 50},
			{at: 1900 * ms, op: "demand", wantRate: 50},
			{at: 2010 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 50.5},
			// No estimate (the seeded calls left the window): the probe's
			// 429 keeps the ceiling (it may creep up 1%, to 50.5, at most).
			{at: 2100 * ms, op: "demand", wantRate: 50.5},
			{at: 2100 * ms, op: "observe", out: ok429, wantOK: true, wantRate: 50.5 / 1.2},
			{at: 2100 * ms, op: "ceiling", wantCeil: 50.5, wantRate: 50.5 / 1.2},
			// Two more 429s within the cooldown: the cut did not stop them,
			// so recovering first lowers the ceiling by 1% twice.
			{at: 2110 * ms, op: "observe", out: ok429, wantOK: false, wantRate: 50.5 / 1.2},
			{at: 2120 * ms, op: "observe", out: ok429, wantOK: false, wantRate: 50.5 / 1.2},
			{at: 2130 * ms, op: "demand", wantRate: 50.5 / 1.2},
			{at: 2130 * ms, op: "observe", out: ok200, wantOK: true, wantRate: 50.5 / 1.01 / 1.01},
			// Throttled at the ceiling, with 45 calls in the last 900ms
			// (50/s): the ceiling comes down to min(50, rate/1.01).
			{at: 3000 * ms, op: "seed", n: 45, wantRate: 50.5 / 1.01 / 1.01},
			{at: 3200 * ms, op: "demand", wantRate: 50.5 / 1.01 / 1.01},
			{at: 3200 * ms, op: "observe", out: ok429, wantOK: true, wantRate: 50.5 / 1.01 / 1.01 / 1.2},
			{at: 3200 * ms, op: "ceiling", wantCeil: 50.5 / 1.01 / 1.01 / 1.01, wantRate: 50.5 / 1.01 / 1.01 / 1.2},
		},
		"a ceiling is forgotten a window after its last throttle": {
			{op: "configure", set: with(func(s *Settings) { s.AdaptationFactor = 1.2 }), wantRate: 10},
			{op: "observe", out: ok429, wantOK: true, wantRate: 10 / 1.2},
			{op: "ceiling", wantCeil: 10 / 1.2, wantRate: 10 / 1.2},
			{at: 59 * s, op: "demand", wantRate: 10 / 1.2},
			{at: 59 * s, op: "observe", out: ok200, wantOK: true, wantRate: 10/1.2 + 10/1.2*0.01}, // probe
			{at: 60 * s, op: "demand", wantRate: 10/1.2 + 10/1.2*0.01},
			{at: 60 * s, op: "observe", out: ok200, wantOK: true, wantRate: (10/1.2 + 10/1.2*0.01) * 1.2}, // demand
			{at: 60 * s, op: "ceiling", wantCeil: 0, wantRate: (10/1.2 + 10/1.2*0.01) * 1.2},
		},
		"configure": {
			{op: "observe", out: ok429, wantOK: true, wantRate: 5},
			// initial_rate changes: the rate restarts there, the ceiling is forgotten.
			{at: 1 * s, op: "configure", set: with(func(s *Settings) { s.InitialRate = 20 }), wantOK: true, wantRate: 20},
			{at: 1 * s, op: "ceiling", wantCeil: 0, wantRate: 20},
			// max below the rate: clamped down.
			{at: 1 * s, op: "configure", set: with(func(s *Settings) { s.InitialRate = 20; s.MaxRate = 15 }), wantOK: true, wantRate: 15},
			// min above it: clamped up.
			{at: 1 * s, op: "configure", set: with(func(s *Settings) { s.InitialRate = 20; s.MaxRate = 50; s.MinRate = 30 }), wantOK: true, wantRate: 30},
			// an initial_rate outside the bounds is clamped.
			{at: 1 * s, op: "configure", set: with(func(s *Settings) { s.InitialRate = 500 }), wantOK: true, wantRate: 100},
			// other keys leave the rate alone.
			{at: 1 * s, op: "configure", set: with(func(s *Settings) { s.InitialRate = 500; s.AdaptationFactor = 3; s.Burst = 2 }), wantOK: false, wantRate: 100},
			{at: 2 * s, op: "allow", n: 2, wantOK: true, wantRate: 100},
			{at: 2 * s, op: "allow", n: 1, wantOK: false, wantRate: 100}, // depth is 2 now
			{at: 2 * s, op: "setrate", rate: 0.5, wantOK: true, wantRate: 1},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) { run(t, steps) })
	}
}

func with(mut func(*Settings)) Settings {
	s := base
	mut(&s)
	return s
}

func TestBucketTokensAndStats(t *testing.T) {
	b := NewBucket(t0, base)
	if got := b.Tokens(t0); got != 5 {
		t.Fatalf("tokens %v, want a full bucket of 5", got)
	}
	b.Allow(t0, 5)
	if got := b.Tokens(at(250 * ms)); got != 2.5 {
		t.Fatalf("tokens %v, want 2.5 after 250ms at 10/s", got)
	}
	// A shallower bucket drops tokens above its depth at once.
	b.Configure(at(10*s), with(func(s *Settings) { s.Burst = 3 }))
	if got := b.Tokens(at(10 * s)); got != 3 {
		t.Fatalf("tokens %v after depth 5 -> 3, want 3", got)
	}
	b.Observe(at(11*s), ok429)
	if st := b.Stats(); st.Throttles != 1 || st.Decreases != 1 || st.Increases != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAcceptedWindow: calls counted in ten 100ms slots; the rate covers
// the nine slots before now's plus the part of now's that has passed (never
// before counting began), and says nothing under 10 calls.
func TestAcceptedWindow(t *testing.T) {
	calls := func(n int) *window1s {
		w := &window1s{since: t0}
		for i := range n {
			w.add(at(time.Duration(i) * 50 * ms)) // 0, 50, 100, … ms
		}
		return w
	}
	none := math.Inf(1)
	cases := []struct {
		calls int
		at    time.Duration
		want  float64
	}{
		{20, 0, none},              // no time covered yet
		{20, 950 * ms, 20 / 0.95},  // since counting began
		{20, 1 * s, 18 / 0.9},      // the slot [0, 100ms) left; nine full slots
		{20, 1050 * ms, 18 / 0.95}, // and half of now's
		{20, 1100 * ms, 16 / 0.9},
		{20, 1400 * ms, 10 / 0.9}, // the last ten calls
		{20, 1500 * ms, none},     // eight: too few to tell
		{20, 10 * s, none},
		{10, 450 * ms, 10 / 0.45},
		{9, 450 * ms, none},
	}
	for _, c := range cases {
		got := calls(c.calls).rate(at(c.at))
		if math.IsInf(c.want, 1) != math.IsInf(got, 1) || (!math.IsInf(got, 1) && math.Abs(got-c.want) > 1e-9) {
			t.Errorf("%d calls, at %v: rate %v, want %v", c.calls, c.at, got, c.want)
		}
	}
}
