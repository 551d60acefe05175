package clock

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// deadline bounds every wait: it is a failure limit, never a synchronisation.
const deadline = 10 * time.Second

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// firing is one timer call, with the fake time it saw.
type firing struct {
	name string
	at   time.Duration // since t0
}

func (f firing) String() string { return fmt.Sprintf("%s@%v", f.name, f.at) }

// recorder collects firings in call order.
type recorder struct {
	mu  sync.Mutex
	got []firing
}

func (r *recorder) fn(c *Fake, name string) func() {
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, firing{name: name, at: c.Now().Sub(t0)})
	}
}

// take returns and forgets what fired since the last take.
func (r *recorder) take() []firing {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func TestFakeNow(t *testing.T) {
	c := NewFake(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("NewFake(t0).Now() = %v, want %v", got, t0)
	}
	c.Advance(1500 * time.Millisecond)
	if got, want := c.Now(), t0.Add(1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after Advance(1.5s) Now() = %v, want %v", got, want)
	}
}

// TestFakeFiresInDueOrder is a step table over fixed instants: each step
// moves the clock and lists the timers that must fire, in order, each
// seeing the fake time equal to its due time.
func TestFakeFiresInDueOrder(t *testing.T) {
	c := NewFake(t0)
	var r recorder
	// Added out of due order; b and c fall due together and fire in the
	// order they were added.
	for _, tm := range []struct {
		name string
		d    time.Duration
	}{
		{"a", 10 * time.Second},
		{"b", 5 * time.Second},
		{"c", 5 * time.Second},
		{"d", 30 * time.Second},
		{"e", 0},
		{"f", 10*time.Second + time.Nanosecond},
	} {
		c.AfterFunc(tm.d, r.fn(c, tm.name))
	}

	steps := []struct {
		name string
		move func()
		fire []firing
		now  time.Duration // since t0, after the step
	}{
		{"zero advance fires a zero delay", func() { c.Advance(0) }, []firing{{"e", 0}}, 0},
		{"not yet due", func() { c.Advance(4 * time.Second) }, nil, 4 * time.Second},
		{"exactly due, same instant in add order", func() { c.Advance(time.Second) }, []firing{{"b", 5 * time.Second}, {"c", 5 * time.Second}}, 5 * time.Second},
		{"one nanosecond early", func() { c.Set(t0.Add(10*time.Second - time.Nanosecond)) }, nil, 10*time.Second - time.Nanosecond},
		{"backwards is ignored", func() { c.Set(t0.Add(2 * time.Second)) }, nil, 10*time.Second - time.Nanosecond},
		{"set to the instant", func() { c.Set(t0.Add(10 * time.Second)) }, []firing{{"a", 10 * time.Second}}, 10 * time.Second},
		{"a long jump fires each at its own time", func() { c.Advance(time.Hour) }, []firing{{"f", 10*time.Second + time.Nanosecond}, {"d", 30 * time.Second}}, time.Hour + 10*time.Second},
		{"nothing left", func() { c.Advance(time.Hour) }, nil, 2*time.Hour + 10*time.Second},
	}
	for _, s := range steps {
		s.move()
		if got := r.take(); !slices.Equal(got, s.fire) {
			t.Errorf("%s: fired %v, want %v", s.name, got, s.fire)
		}
		if got := c.Now().Sub(t0); got != s.now {
			t.Errorf("%s: now t0+%v, want t0+%v", s.name, got, s.now)
		}
	}
}

func TestFakeSetNeverMovesBackwards(t *testing.T) {
	c := NewFake(t0)
	c.Set(t0.Add(time.Minute))
	c.Set(t0)
	if got, want := c.Now(), t0.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("Set back to t0 moved the clock to %v, want it kept at %v", got, want)
	}
	c.Advance(-time.Second)
	if got, want := c.Now(), t0.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("Advance(-1s) moved the clock to %v, want it kept at %v", got, want)
	}
}

func TestFakeStop(t *testing.T) {
	c := NewFake(t0)
	var r recorder
	stopped := c.AfterFunc(time.Second, r.fn(c, "stopped"))
	fired := c.AfterFunc(time.Second, r.fn(c, "fired"))

	if !stopped.Stop() {
		t.Error("Stop before firing reported false, want true")
	}
	if stopped.Stop() {
		t.Error("second Stop reported true, want false")
	}
	c.Advance(time.Second)
	if got, want := r.take(), []firing{{"fired", time.Second}}; !slices.Equal(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
	if fired.Stop() {
		t.Error("Stop after firing reported true, want false")
	}
	c.Advance(time.Hour)
	if got := r.take(); got != nil {
		t.Errorf("after Stop, fired %v", got)
	}
}

func TestFakeStopFromCallback(t *testing.T) {
	c := NewFake(t0)
	var r recorder
	var later Timer
	var stopResult bool
	c.AfterFunc(time.Second, func() { stopResult = later.Stop() })
	later = c.AfterFunc(2*time.Second, r.fn(c, "later"))

	c.Advance(5 * time.Second)
	if !stopResult {
		t.Error("Stop of a pending timer from a firing callback reported false")
	}
	if got := r.take(); got != nil {
		t.Errorf("timer stopped by an earlier callback of the same Advance fired: %v", got)
	}
}

func TestFakePending(t *testing.T) {
	c := NewFake(t0)
	noop := func() {}
	if got := c.Pending(); len(got) != 0 {
		t.Fatalf("new clock has pending %v", got)
	}
	c.AfterFunc(3*time.Second, noop)
	c.AfterFunc(time.Second, noop)
	two := c.AfterFunc(2*time.Second, noop)
	c.AfterFunc(3*time.Second, noop)

	steps := []struct {
		name string
		move func()
		want []time.Duration
	}{
		{"sorted", func() {}, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"relative to now", func() { c.Advance(500 * time.Millisecond) }, []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond, 2500 * time.Millisecond}},
		{"fired ones gone", func() { c.Advance(time.Second) }, []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond}},
		{"stopped ones gone", func() { two.Stop() }, []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}},
		{"all fired", func() { c.Advance(time.Hour) }, []time.Duration{}},
	}
	for _, s := range steps {
		s.move()
		if got := c.Pending(); !slices.Equal(got, s.want) {
			t.Errorf("%s: Pending() = %v, want %v", s.name, got, s.want)
		}
	}
}

func TestFakeCallbackAddsTimers(t *testing.T) {
	c := NewFake(t0)
	var r recorder
	c.AfterFunc(time.Second, func() {
		r.fn(c, "a")()
		c.AfterFunc(0, r.fn(c, "a+0"))
		c.AfterFunc(500*time.Millisecond, func() {
			r.fn(c, "a+500ms")()
			c.AfterFunc(0, r.fn(c, "a+500ms+0"))
		})
		c.AfterFunc(2*time.Second, r.fn(c, "a+2s"))
	})
	c.AfterFunc(1200*time.Millisecond, r.fn(c, "b"))

	c.Advance(2 * time.Second)
	want := []firing{
		{"a", time.Second},
		{"a+0", time.Second},
		{"b", 1200 * time.Millisecond},
		{"a+500ms", 1500 * time.Millisecond},
		{"a+500ms+0", 1500 * time.Millisecond},
	}
	if got := r.take(); !slices.Equal(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
	if got, want := c.Pending(), []time.Duration{time.Second}; !slices.Equal(got, want) {
		t.Errorf("Pending() = %v, want %v (a+2s, due at 3s)", got, want)
	}
	c.Advance(time.Second)
	if got, want := r.take(), []firing{{"a+2s", 3 * time.Second}}; !slices.Equal(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
}

func TestFakeWaitForTimersCounts(t *testing.T) {
	c := NewFake(t0)
	ended, cancel := context.WithCancel(context.Background())
	cancel()

	// With an ended context the answer is the count as it stands.
	if c.WaitForTimers(ended, 0) != true {
		t.Error("WaitForTimers(ended, 0) with no timers = false, want true")
	}
	if c.WaitForTimers(ended, 1) != false {
		t.Error("WaitForTimers(ended, 1) with no timers = true, want false")
	}
	stop := c.AfterFunc(time.Second, func() {})
	c.AfterFunc(time.Second, func() {})
	if c.WaitForTimers(ended, 2) != true {
		t.Error("WaitForTimers(ended, 2) with 2 timers = false, want true")
	}
	if c.WaitForTimers(ended, 3) != false {
		t.Error("WaitForTimers(ended, 3) with 2 timers = true, want false")
	}
	stop.Stop()
	if c.WaitForTimers(ended, 2) != false {
		t.Error("WaitForTimers(ended, 2) after a Stop left 1 = true, want false")
	}
	c.Advance(time.Second)
	if c.WaitForTimers(ended, 1) != false {
		t.Error("WaitForTimers(ended, 1) after all fired = true, want false")
	}
}

// waitParkedIn waits until some goroutine is blocked in a select inside fn,
// polling goroutine stacks (yielding, not sleeping).
func waitParkedIn(t *testing.T, fn string) {
	t.Helper()
	end := time.Now().Add(deadline)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, fn) {
				return
			}
		}
		if time.Now().After(end) {
			t.Fatalf("no goroutine blocked in %s", fn)
		}
		runtime.Gosched()
	}
}

func TestFakeWaitForTimersWakesOnAdd(t *testing.T) {
	c := NewFake(t0)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	const n = 3
	result := make(chan int, 1) // pending timers seen when WaitForTimers returned true, or -1
	go func() {
		if c.WaitForTimers(ctx, n) {
			result <- len(c.Pending())
		} else {
			result <- -1
		}
	}()
	waitParkedIn(t, "clock.(*Fake).WaitForTimers(")

	// The waiter runs on its own goroutine; timers are added here one by
	// one, each once it is blocked: only the n-th may let it return.
	for i := range n {
		if i > 0 {
			waitParkedIn(t, "clock.(*Fake).WaitForTimers(")
		}
		select {
		case got := <-result:
			t.Fatalf("WaitForTimers returned (%d pending) with only %d of %d timers added", got, i, n)
		default:
		}
		c.AfterFunc(time.Duration(i+1)*time.Second, func() {})
	}

	select {
	case got := <-result:
		if got < n {
			t.Fatalf("WaitForTimers(ctx, %d) = %v with %d pending", n, got >= 0, got)
		}
	case <-time.After(deadline):
		t.Fatal("WaitForTimers did not return once the timers were added")
	}
}

func TestFakeWaitForTimersEndsWithContext(t *testing.T) {
	c := NewFake(t0)
	c.AfterFunc(time.Second, func() {})
	ctx, cancel := context.WithCancel(context.Background())

	result := make(chan bool, 1)
	go func() { result <- c.WaitForTimers(ctx, 2) }()
	waitParkedIn(t, "clock.(*Fake).WaitForTimers(")
	cancel()

	select {
	case got := <-result:
		if got {
			t.Fatal("WaitForTimers = true with 1 of 2 timers pending and its context ended")
		}
	case <-time.After(deadline):
		t.Fatal("WaitForTimers did not return when its context ended")
	}
}

// TestFakeConcurrentUse runs every operation at once; the race detector
// checks the locking, and every timer fires or is stopped exactly once.
func TestFakeConcurrentUse(t *testing.T) {
	c := NewFake(t0)
	const workers, each = 8, 200
	var mu sync.Mutex
	calls := map[int]int{}
	stoppedOK := map[int]bool{}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := w*each + i
				tm := c.AfterFunc(time.Duration(i%7)*time.Millisecond, func() {
					mu.Lock()
					calls[k]++
					mu.Unlock()
				})
				if i%3 == 0 && tm.Stop() {
					mu.Lock()
					stoppedOK[k] = true
					mu.Unlock()
				}
				_ = c.Pending()
				_ = c.Now()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range workers * each {
			c.Advance(time.Millisecond)
		}
	}()
	wg.Wait()
	c.Advance(time.Hour) // whatever is left falls due

	for k := range workers * each {
		n, stopped := calls[k], stoppedOK[k]
		switch {
		case stopped && n != 0:
			t.Errorf("timer %d: Stop reported true but it fired %d times", k, n)
		case !stopped && n != 1:
			t.Errorf("timer %d fired %d times, want once", k, n)
		}
	}
	if p := c.Pending(); len(p) != 0 {
		t.Errorf("pending after everything fell due: %v", p)
	}
}

func TestRealNow(t *testing.T) {
	before := time.Now()
	got := Real{}.Now()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("Real.Now() = %v, not within [%v, %v]", got, before, after)
	}
}

func TestRealAfterFuncFires(t *testing.T) {
	fired := make(chan time.Time, 1)
	start := time.Now()
	tm := Real{}.AfterFunc(5*time.Millisecond, func() { fired <- time.Now() })
	select {
	case at := <-fired:
		if at.Sub(start) < 5*time.Millisecond {
			t.Errorf("fired after %v, before its 5ms", at.Sub(start))
		}
	case <-time.After(deadline):
		t.Fatal("Real.AfterFunc never fired")
	}
	if tm.Stop() {
		t.Error("Stop after firing reported true, want false")
	}
}

func TestRealAfterFuncStop(t *testing.T) {
	fired := make(chan struct{}, 1)
	tm := Real{}.AfterFunc(time.Hour, func() { fired <- struct{}{} })
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer reported false, want true")
	}
	if tm.Stop() {
		t.Error("second Stop reported true, want false")
	}
	select {
	case <-fired:
		t.Error("stopped timer fired")
	default:
	}
}
