package dispatch

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// deadline bounds every wait: it is a failure limit, never a synchronisation.
const deadline = 10 * time.Second

// newPool returns a pool that is closed when the test ends.
func newPool(t *testing.T, throughput int, idle time.Duration) *Pool {
	t.Helper()
	p := New(throughput, idle)
	t.Cleanup(func() { closeWithin(t, p) })
	return p
}

// closeWithin closes p, failing the test rather than hanging if Close does.
func closeWithin(t *testing.T, p *Pool) {
	t.Helper()
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	actortest.Await(t, "Pool.Close", closed)
}

// occupy schedules n functions on p that block until release is closed,
// and waits until all of them run, each on a pool goroutine of its own.
func occupy(t *testing.T, p *Pool, n int) (release chan struct{}) {
	t.Helper()
	started, release := make(chan struct{}, n), make(chan struct{})
	for range n {
		p.Schedule(func() {
			started <- struct{}{}
			<-release
		})
	}
	for range n {
		actortest.Await(t, "the blocking functions to start", started)
	}
	return release
}

// goroutine is one entry of a full goroutine dump.
type goroutine struct {
	id     int64
	status string // "select", "chan receive", "running", ...
	stack  string
}

// goroutines parses runtime.Stack(all=true).
func goroutines() []goroutine {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		header, stack, _ := strings.Cut(string(block), "\n")
		// "goroutine 18 [select]:" or "goroutine 18 [select, 2 minutes]:"
		rest, ok := strings.CutPrefix(header, "goroutine ")
		if !ok {
			continue
		}
		idText, status, _ := strings.Cut(rest, " [")
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			continue
		}
		status, _, _ = strings.Cut(strings.TrimSuffix(status, "]:"), ",")
		out = append(out, goroutine{id: id, status: status, stack: stack})
	}
	return out
}

// loopFrame marks a goroutine that the pool started.
const loopFrame = "dispatch.(*Pool).loop("

// poolGoroutines counts the pool's goroutines, and those of them parked
// waiting for work (idle).
func poolGoroutines() (total, idle int) {
	for _, g := range goroutines() {
		if !strings.Contains(g.stack, loopFrame) {
			continue
		}
		total++
		// An idle goroutine is parked in loop's select, with loop as its top frame.
		top, _, _ := strings.Cut(g.stack, "\n")
		if g.status == "select" && strings.Contains(top, loopFrame) {
			idle++
		}
	}
	return total, idle
}

// eventually polls cond (yielding, not sleeping) until it holds or the
// deadline passes; it reports the last state with describe on failure.
func eventually(t *testing.T, cond func() bool, describe func() string) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("condition not reached: %s", describe())
		}
		runtime.Gosched()
	}
}

// noPoolGoroutines waits for the goroutines of earlier tests' pools to be
// gone, so that counts in this test are its own.
func noPoolGoroutines(t *testing.T) {
	t.Helper()
	waitPoolGoroutines(t, 0, 0)
}

func waitPoolGoroutines(t *testing.T, wantTotal, wantIdle int) {
	t.Helper()
	var total, idle int
	eventually(t, func() bool {
		total, idle = poolGoroutines()
		return total == wantTotal && idle == wantIdle
	}, func() string {
		return fmt.Sprintf("pool goroutines: total %d idle %d, want total %d idle %d", total, idle, wantTotal, wantIdle)
	})
}

// goid is the id of the calling goroutine.
func goid() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	rest, _ := strings.CutPrefix(string(buf[:n]), "goroutine ")
	idText, _, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		panic("cannot parse goroutine id from " + string(buf[:n]))
	}
	return id
}

func TestThroughputIsWhatNewGot(t *testing.T) {
	for _, n := range []int{1, 7, 300} {
		p := newPool(t, n, time.Minute)
		if got := p.Throughput(); got != n {
			t.Errorf("New(%d, _).Throughput() = %d", n, got)
		}
	}
}

func TestScheduleRunsEveryFunctionExactlyOnce(t *testing.T) {
	const schedulers, each = 16, 500
	p := newPool(t, 10, time.Minute)

	var runs [schedulers * each]atomic.Int32
	var done sync.WaitGroup
	done.Add(schedulers * each)
	var start sync.WaitGroup
	start.Add(schedulers)
	for s := range schedulers {
		go func() {
			start.Done()
			start.Wait() // all schedulers race each other
			for i := range each {
				k := s*each + i
				p.Schedule(func() {
					runs[k].Add(1)
					done.Done()
				})
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { done.Wait(); close(allDone) }()
	actortest.Await(t, "every scheduled function to run", allDone)

	for k := range runs {
		if n := runs[k].Load(); n != 1 {
			t.Errorf("function %d ran %d times, want 1", k, n)
		}
	}
}

func TestIdleGoroutineRunsTheNextSchedule(t *testing.T) {
	noPoolGoroutines(t)
	p := newPool(t, 10, time.Hour) // the goroutine must not time out during the test

	first := make(chan int64, 1)
	p.Schedule(func() { first <- goid() })
	g1 := actortest.Await(t, "the first function", first)

	// Once the goroutine waits for work, a Schedule must hand fn to it rather
	// than start another goroutine.
	waitPoolGoroutines(t, 1, 1)
	for i := range 3 {
		next := make(chan int64, 1)
		p.Schedule(func() { next <- goid() })
		if g := actortest.Await(t, "the next function", next); g != g1 {
			t.Fatalf("schedule %d ran on goroutine %d, want the idle goroutine %d", i, g, g1)
		}
		waitPoolGoroutines(t, 1, 1)
	}
}

func TestBlockedFunctionDoesNotStopOtherWork(t *testing.T) {
	noPoolGoroutines(t)
	p := newPool(t, 10, time.Hour)

	// Make one idle goroutine first, so the blocking function takes it and
	// the next Schedule finds no idle goroutine.
	warm := make(chan struct{})
	p.Schedule(func() { close(warm) })
	actortest.Await(t, "the warm-up function", warm)
	waitPoolGoroutines(t, 1, 1)

	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	p.Schedule(func() {
		close(started)
		<-release
	})
	actortest.Await(t, "the blocking function to start", started)

	for i := range 3 {
		ran := make(chan struct{})
		go p.Schedule(func() { close(ran) }) // on its own goroutine: a Schedule that blocks fails here, not hangs
		actortest.Await(t, fmt.Sprintf("function %d scheduled while another blocks", i), ran)
	}
}

func TestIdleGoroutinesExitAfterIdleTimeout(t *testing.T) {
	noPoolGoroutines(t)
	p := New(10, time.Millisecond) // no Close: the goroutines must go on their own

	const n = 8
	release := occupy(t, p, n)
	if total, _ := poolGoroutines(); total != n {
		t.Fatalf("%d blocked functions run on %d pool goroutines, want %d", n, total, n)
	}
	close(release)

	waitPoolGoroutines(t, 0, 0)

	// The pool still works after every goroutine has gone.
	ran := make(chan struct{})
	p.Schedule(func() { close(ran) })
	actortest.Await(t, "a function scheduled after the goroutines exited", ran)
	waitPoolGoroutines(t, 0, 0)
}

func TestCloseReleasesIdleGoroutines(t *testing.T) {
	noPoolGoroutines(t)
	p := New(10, time.Hour)

	const n = 4
	release := occupy(t, p, n)
	close(release)
	waitPoolGoroutines(t, n, n)

	closeWithin(t, p) // Close with only idle goroutines
	waitPoolGoroutines(t, 0, 0)

	closeWithin(t, p) // a second Close is harmless
}

func TestCloseWaitsForRunningFunctions(t *testing.T) {
	noPoolGoroutines(t)
	p := New(10, time.Hour)

	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	p.Schedule(func() {
		close(started)
		<-release
		finished.Store(true)
	})
	actortest.Await(t, "the running function to start", started)

	closed := make(chan bool)
	go func() {
		p.Close()
		closed <- finished.Load()
	}()

	// Release the function only once Close is waiting for it.
	eventually(t, func() bool {
		for _, g := range goroutines() {
			if strings.Contains(g.stack, "dispatch.(*Pool).Close(") && strings.Contains(g.stack, "sync.(*WaitGroup).Wait(") {
				return true
			}
		}
		return false
	}, func() string { return "no goroutine is waiting in Pool.Close" })
	select {
	case <-closed:
		t.Fatal("Close returned while a function was still running")
	default:
	}
	close(release)

	if !actortest.Await(t, "Close", closed) {
		t.Fatal("Close returned before the running function finished")
	}
	waitPoolGoroutines(t, 0, 0)
}

func TestScheduleAfterCloseStillRuns(t *testing.T) {
	noPoolGoroutines(t)
	p := New(10, time.Hour)
	closeWithin(t, p)

	ran := make(chan struct{})
	p.Schedule(func() { close(ran) })
	actortest.Await(t, "a function scheduled after Close", ran)
	waitPoolGoroutines(t, 0, 0) // and its goroutine does not stay idle
}

// TestActorsOnPoolProcessMessagesInOrder is a real actor system round trip:
// actors whose mailboxes run on the pool get their messages in send order.
func TestActorsOnPoolProcessMessagesInOrder(t *testing.T) {
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(time.Millisecond),
	)
	t.Cleanup(sys.Shutdown)
	// A small throughput makes each mailbox go back to the pool many times.
	pool := newPool(t, 3, time.Millisecond)

	type done struct{}
	const actors, messages = 8, 1000
	type result struct {
		actor int
		got   []int
	}
	results := make(chan result, actors)
	pids := make([]*actor.PID, actors)
	for a := range actors {
		var got []int
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case int:
				got = append(got, m)
			case done:
				results <- result{actor: a, got: got}
			}
		}, actor.WithDispatcher(pool))
		pids[a] = sys.Root.Spawn(props)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			if err := sys.Root.StopFuture(pid).Wait(); err != nil {
				t.Errorf("stop %v: %v", pid, err)
			}
		}
	})

	var senders sync.WaitGroup
	for a := range actors {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range messages {
				sys.Root.Send(pids[a], i)
			}
			sys.Root.Send(pids[a], done{})
		}()
	}
	senders.Wait()

	for range actors {
		r := actortest.Await(t, "an actor to report", results)
		if len(r.got) != messages {
			t.Errorf("actor %d got %d messages, want %d", r.actor, len(r.got), messages)
			continue
		}
		for i, m := range r.got {
			if m != i {
				t.Errorf("actor %d: message %d is %d, want %d (out of order)", r.actor, i, m, i)
				break
			}
		}
	}
}
