package breaker

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// sim drives one endpoint's breaker the way workers and its actor do, on
// one goroutine at fixed instants, without the mailbox: a worker reads the
// board, skips reporting a success Board.Quiet counts, and otherwise
// reports; the actor records each report (record: the quiet count first)
// and sets its board entry.
type sim struct {
	b       *Breaker
	board   *Board
	reports int // messages the breaker would have been sent
}

const simUp, simEP, simName = "sim", "http://127.0.0.1:8001", "breaker/sim/0"

func newSim(t0 time.Time) *sim {
	s := &sim{b: New(SettingsFrom(conf.Default().ErrorRecovery)), board: NewBoard()}
	s.b.CountQuiet(t0, s.board.QuietCalls(simUp, simEP)) // as the actor starts
	s.board.Set(entry(s.b, simUp, simEP, simName))
	return s
}

// call makes one call at now that fails or succeeds; allowed is false when
// the board refuses it (the breaker is open).
func (s *sim) call(now time.Time, fail bool) (allowed bool) {
	e, _ := s.board.Get(simUp, simEP)
	if _, ok := e.Admits(now); !ok || e.State != Closed {
		return false // the simulations stop at the first opening
	}
	if !fail && s.board.Quiet(simUp, simEP, e.Generation) {
		return true
	}
	msg := &messages.ReportResult{Generation: e.Generation, Success: !fail, Counted: fail}
	if msg.Counted {
		s.board.Reporting(simUp, simEP)
	}
	s.reports++
	record(s.b, now, s.board.QuietCalls(simUp, simEP), msg)
	s.board.Set(entry(s.b, simUp, simEP, simName))
	if msg.Counted {
		s.board.Reported(simUp, simEP)
	}
	return true
}

// At 1,000 req/s with 10% of calls failing at random, the default breaker
// (5 failures within 10 s that are half its calls) never opens, and it is
// told of about one call in five.
func TestSimScatteredFailuresNeverOpen(t *testing.T) {
	const calls, every, share = 1_000_000, time.Millisecond, 0.1
	rng := rand.New(rand.NewPCG(10, 2026))
	s := newSim(t0)
	var failed int
	var worst float64 // the largest failure share of the window seen
	for i := range calls {
		now := t0.Add(time.Duration(i) * every)
		fail := rng.Float64() < share
		if !s.call(now, fail) {
			f, c := s.b.Tripped()
			t.Fatalf("call %d at t0+%v: the breaker opened on %d failures in %d calls", i, now.Sub(t0), f, c)
		}
		if fail {
			failed++
			if f, c := s.b.Window(now); f >= 5 {
				worst = max(worst, float64(f)/float64(c))
			}
		}
	}
	end := t0.Add(calls * every)
	f, c := s.b.Window(end)
	t.Logf("%d calls, %d failed, %d reported; worst window share %.3f; at the end the window holds %d failures in %d calls",
		calls, failed, s.reports, worst, f, c)
	if s.b.Opens() != 0 || s.b.State() != Closed {
		t.Fatalf("opened %d times", s.b.Opens())
	}
	if worst >= 0.2 {
		t.Errorf("worst failure share of a window %.3f: far above 10%%, the window miscounts", worst)
	}
	// The window holds the calls of its last 9 to 10 s, quiet ones included.
	if c < 9_000 || c > 10_000 {
		t.Errorf("the window holds %d calls at the end, want 9,000 to 10,000", c)
	}
	if s.reports > calls/4 {
		t.Errorf("%d reports for %d calls: quiet successes are not to be reported", s.reports, calls)
	}
}

// An endpoint failing every call opens after exactly threshold calls.
func TestSimDeadEndpointOpensAfterThreshold(t *testing.T) {
	s := newSim(t0)
	threshold := s.b.Threshold()
	n := 0
	for ; n < 1_000_000 && s.call(t0.Add(time.Duration(n)*time.Millisecond), true); n++ {
	}
	if n != threshold || s.b.State() != Open {
		t.Fatalf("%d calls went out before the breaker opened (state %v), want %d", n, s.b.State(), threshold)
	}
	if f, c := s.b.Tripped(); f != int64(threshold) || c != int64(threshold) {
		t.Fatalf("opened on %d failures in %d calls", f, c)
	}
}

// At 1,000 req/s a healthy endpoint that dies opens once its failures are
// half the window's calls: about half a window later, as the successes
// from before it died (every one quiet, none reported) roll out.
func TestSimEndpointDyingUnderLoadOpensWithinTheWindow(t *testing.T) {
	s := newSim(t0)
	const healthy = 100_000 // 100 s
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }
	for i := range healthy {
		if !s.call(at(i), false) {
			t.Fatalf("call %d refused", i)
		}
	}
	if s.reports != 0 {
		t.Fatalf("%d successes reported to a breaker with nothing to reset", s.reports)
	}
	n := 0
	for ; n < 100_000 && s.call(at(healthy+n), true); n++ {
	}
	f, c := s.b.Tripped()
	t.Logf("opened after %d failed calls (%v), on %d failures in %d calls", n, time.Duration(n)*time.Millisecond, f, c)
	// At the first failure the window reaches 9 s back (the rest of its
	// ten buckets is ahead): 9,000 successes, one bucket of which rolls
	// out each second, so failures reach half after 5 s. Steady traffic:
	// the successes the board counted are spread exactly.
	if s.b.State() != Open || n < 4_500 || n > 5_500 {
		t.Fatalf("state %v after %d failed calls, want open after about 5,000", s.b.State(), n)
	}
}
