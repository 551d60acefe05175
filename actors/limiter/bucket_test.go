package limiter

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const ms, s = time.Millisecond, time.Second

// base: rate 10/s between 1 and 100, factor 2, window 60s (step 6s), depth 5.
var base = Settings{InitialRate: 10, MinRate: 1, MaxRate: 100, AdaptationFactor: 2, Window: 60 * s, Burst: 5}

// step is one operation on a bucket and what must follow.
type step struct {
	at   time.Duration
	op   string // allow, wait, observe, configure, setrate
	n    int
	out  Outcome
	set  Settings
	rate float64 // for setrate

	wantOK   bool          // allow: granted; observe/configure/setrate: rate changed
	wantWait time.Duration // wait
	wantRate float64
}

func run(t *testing.T, steps []step) {
	t.Helper()
	b := NewBucket(t0, base)
	for i, st := range steps {
		now := at(st.at)
		var ok bool
		switch st.op {
		case "allow":
			ok = b.Allow(now, st.n)
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
		default:
			t.Fatalf("unknown op %q", st.op)
		}
		if ok != st.wantOK {
			t.Fatalf("step %d (%s at %v): ok %v, want %v", i, st.op, st.at, ok, st.wantOK)
		}
		if r := b.Rate(); r != st.wantRate {
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
		"throttles divide the rate once per cooldown, not below min": {
			{op: "observe", out: ok429, wantOK: true, wantRate: 5},
			{at: 500 * ms, op: "observe", out: busy503, wantOK: false, wantRate: 5},
			{at: 1 * s, op: "observe", out: Outcome{Status: 500, Overload: true}, wantOK: true, wantRate: 2.5},
			{at: 2 * s, op: "observe", out: ok429, wantOK: true, wantRate: 1.25},
			{at: 3 * s, op: "observe", out: ok429, wantOK: true, wantRate: 1},
			{at: 4 * s, op: "observe", out: ok429, wantOK: false, wantRate: 1},
			{at: 4 * s, op: "observe", out: Outcome{Status: 500}, wantOK: false, wantRate: 1}, // a plain 500 is no rate signal
		},
		"retry-after pauses grants even with tokens": {
			{op: "observe", out: Outcome{Status: 429, RetryAfter: 3 * s}, wantOK: true, wantRate: 5},
			{op: "wait", n: 1, wantWait: 3 * s, wantRate: 5},
			{at: 2999 * ms, op: "allow", n: 1, wantOK: false, wantRate: 5},
			{at: 3 * s, op: "allow", n: 1, wantOK: true, wantRate: 5},
		},
		"demand and success raise the rate once per step, not above max": {
			{op: "allow", n: 5, wantOK: true, wantRate: 10},
			{op: "allow", n: 1, wantOK: false, wantRate: 10}, // demand above the rate at t0
			{at: 5 * s, op: "observe", out: ok200, wantOK: false, wantRate: 10},
			{at: 6 * s, op: "observe", out: ok200, wantOK: true, wantRate: 20},
			{at: 7 * s, op: "observe", out: ok200, wantOK: false, wantRate: 20},  // step not over
			{at: 13 * s, op: "observe", out: ok200, wantOK: false, wantRate: 20}, // demand is 13s old
			{at: 13 * s, op: "allow", n: 5, wantOK: true, wantRate: 20},
			{at: 13 * s, op: "allow", n: 1, wantOK: false, wantRate: 20},
			{at: 14 * s, op: "observe", out: Outcome{Status: 404}, wantOK: true, wantRate: 40}, // accepted, if not ok
			{at: 20 * s, op: "allow", n: 5, wantOK: true, wantRate: 40},
			{at: 20 * s, op: "allow", n: 1, wantOK: false, wantRate: 40},
			{at: 20 * s, op: "observe", out: ok200, wantOK: true, wantRate: 80},
			{at: 26 * s, op: "allow", n: 5, wantOK: true, wantRate: 80},
			{at: 26 * s, op: "allow", n: 1, wantOK: false, wantRate: 80},
			{at: 26 * s, op: "observe", out: ok200, wantOK: true, wantRate: 100},
			{at: 32 * s, op: "allow", n: 5, wantOK: true, wantRate: 100},
			{at: 32 * s, op: "allow", n: 1, wantOK: false, wantRate: 100},
			{at: 32 * s, op: "observe", out: ok200, wantOK: false, wantRate: 100},
		},
		"no increase within the window of a throttle": {
			{op: "observe", out: ok429, wantOK: true, wantRate: 5},
			{at: 30 * s, op: "allow", n: 5, wantOK: true, wantRate: 5},
			{at: 30 * s, op: "allow", n: 1, wantOK: false, wantRate: 5},
			{at: 30 * s, op: "observe", out: ok200, wantOK: false, wantRate: 5},
			{at: 59 * s, op: "allow", n: 5, wantOK: true, wantRate: 5},
			{at: 59 * s, op: "allow", n: 1, wantOK: false, wantRate: 5},
			{at: 59 * s, op: "observe", out: ok200, wantOK: false, wantRate: 5},
			{at: 60 * s, op: "observe", out: ok200, wantOK: true, wantRate: 10},
		},
		"configure": {
			{op: "observe", out: ok429, wantOK: true, wantRate: 5},
			// initial_rate changes: the rate restarts there.
			{at: 1 * s, op: "configure", set: with(func(s *Settings) { s.InitialRate = 20 }), wantOK: true, wantRate: 20},
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
	if step := b.IncreaseStep(); step != 6*s {
		t.Fatalf("step %v, want window/10 = 6s", step)
	}
}

// TestConvergesToCapacity drives a bucket with unbounded demand against a
// simulated provider that answers 429 beyond capacity calls per second.
// After the climb, the rate must stay within one factor of the capacity.
func TestConvergesToCapacity(t *testing.T) {
	for _, capacity := range []float64{3, 30, 80} {
		b := NewBucket(t0, Settings{InitialRate: 10, MinRate: 1, MaxRate: 100, AdaptationFactor: 1.2, Window: 60 * s, Burst: 5})
		var second time.Time
		served := 0.0
		lo, hi := math.Inf(1), 0.0
		for now := t0; now.Before(t0.Add(15 * time.Minute)); now = now.Add(10 * ms) {
			if now.Sub(second) >= s {
				second, served = now, 0
			}
			for b.Allow(now, 1) {
				served++
				if served > capacity {
					b.Observe(now, Outcome{Status: 429})
				} else {
					b.Observe(now, Outcome{Status: 200})
				}
			}
			if now.After(t0.Add(5 * time.Minute)) {
				lo, hi = math.Min(lo, b.Rate()), math.Max(hi, b.Rate())
			}
		}
		if lo < capacity/1.2 || hi > capacity*1.2 {
			t.Errorf("capacity %v: rate ranged over [%.2f, %.2f] after 5 minutes", capacity, lo, hi)
		}
	}
}
