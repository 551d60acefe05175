package breaker

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBoardGetSet(t *testing.T) {
	var none *Board
	if _, ok := none.Get("sim", endpoint); ok {
		t.Fatal("nil board has an entry")
	}
	none.Set(Entry{Upstream: "sim", Endpoint: endpoint, State: Open}) // ignored, no panic
	if ep, probe, ok := none.Route(t0, "sim", []string{endpoint}); ep != endpoint || probe || !ok {
		t.Fatalf("nil board routes to %q probe %v ok %v", ep, probe, ok)
	}

	b := NewBoard()
	if _, ok := b.Get("sim", endpoint); ok {
		t.Fatal("empty board has an entry")
	}
	open := Entry{Upstream: "sim", Endpoint: endpoint, Actor: "breaker/sim/127.0.0.1:8001", State: Open, Generation: 1, OpenUntil: t0.Add(10 * s)}
	b.Set(open)
	if e, ok := b.Get("sim", endpoint); !ok || !e.same(&open) {
		t.Fatalf("Get = %+v %v, want %+v", e, ok, open)
	}
	// Two upstreams on one URL have two breakers: two entries.
	other := Entry{Upstream: "sim2", Endpoint: endpoint, State: Closed, Generation: 4}
	b.Set(other)
	if e, _ := b.Get("sim", endpoint); !e.same(&open) {
		t.Fatalf("sim's entry overwritten by sim2's: %+v", e)
	}
	if e, _ := b.Get("sim2", endpoint); !e.same(&other) {
		t.Fatalf("sim2 = %+v", e)
	}
	closed := Entry{Upstream: "sim", Endpoint: endpoint, State: Closed, Generation: 3}
	b.Set(closed)
	if e, _ := b.Get("sim", endpoint); !e.same(&closed) {
		t.Fatalf("after update %+v", e)
	}
	if _, ok := b.Get("sim", "http://elsewhere"); ok {
		t.Fatal("entry for an endpoint never set")
	}

	// An upstream with more endpoints than a scan serves is indexed.
	var many []string
	for i := range 2 * laneScan {
		many = append(many, fmt.Sprintf("http://h%d", i))
		b.Set(Entry{Upstream: "big", Endpoint: many[i], State: Open, Generation: uint64(i), OpenUntil: t0.Add(time.Duration(i+1) * s)})
	}
	for i, ep := range many {
		if e, ok := b.Get("big", ep); !ok || e.Generation != uint64(i) {
			t.Fatalf("big %s: %+v %v", ep, e, ok)
		}
	}
	if ep, probe, ok := b.Route(t0.Add(3*s), "big", many); ep != many[0] || !probe || !ok {
		t.Fatalf("Route over many: %q %v %v", ep, probe, ok)
	}
	if _, ok := b.Get("big", "http://h99"); ok {
		t.Fatal("entry for an endpoint never set")
	}
}

func TestEntryAdmits(t *testing.T) {
	for _, c := range []struct {
		e         Entry
		at        time.Duration
		probe, ok bool
	}{
		{Entry{State: Closed}, 0, false, true},
		{Entry{State: Open, OpenUntil: t0.Add(10 * s)}, 9 * s, true, false},
		{Entry{State: Open, OpenUntil: t0.Add(10 * s)}, 10 * s, true, true},
		{Entry{State: HalfOpen}, 0, true, true},                                  // no probe out
		{Entry{State: HalfOpen, OpenUntil: t0.Add(20 * s)}, 19 * s, true, false}, // probe out
		{Entry{State: HalfOpen, OpenUntil: t0.Add(20 * s)}, 20 * s, true, true},  // probe presumed lost
	} {
		if probe, ok := c.e.Admits(t0.Add(c.at)); probe != c.probe || ok != c.ok {
			t.Errorf("%v until %v at +%v: probe %v ok %v, want %v %v", c.e.State, c.e.OpenUntil.Sub(t0), c.at, probe, ok, c.probe, c.ok)
		}
	}
}

func TestBoardPick(t *testing.T) {
	const a, b, c = "http://a:1", "http://b:1", "http://c:1"
	eps := []string{a, b, c}
	closed := func(gen uint64) Entry { return Entry{State: Closed, Generation: gen} }
	open := func(until time.Duration) Entry { return Entry{State: Open, Generation: 1, OpenUntil: t0.Add(until)} }
	probing := func(until time.Duration) Entry {
		return Entry{State: HalfOpen, Generation: 2, OpenUntil: t0.Add(until)}
	}
	halfOpen := Entry{State: HalfOpen, Generation: 2}
	cases := []struct {
		name    string
		board   map[string]Entry // missing: no entry
		first   int
		want    string // "" when none
		gen     uint64
		probe   bool
		retryAt time.Duration // when none: want RetryAt t0+retryAt
	}{
		{name: "no entries: the first, as closed", want: a},
		{name: "all closed: the first", board: map[string]Entry{a: closed(3), b: closed(0), c: closed(0)}, want: a, gen: 3},
		{name: "preferred first", board: map[string]Entry{a: closed(0), b: closed(0), c: closed(7)}, first: 2, want: c, gen: 7},
		{name: "preferred open: the next closed in order", board: map[string]Entry{a: closed(0), b: closed(0), c: open(10 * s)}, first: 2, want: a},
		{name: "preferred out of range means 0", board: map[string]Entry{a: closed(0)}, first: 9, want: a},
		{name: "negative preferred means 0", board: map[string]Entry{a: closed(0)}, first: -1, want: a},
		{name: "skips open", board: map[string]Entry{a: open(10 * s), b: closed(5), c: closed(0)}, want: b, gen: 5},
		{name: "closed beats a due probe that is not preferred", board: map[string]Entry{a: open(10 * s), b: halfOpen, c: closed(4)}, want: c, gen: 4},
		{name: "the preferred endpoint is probed when due, though another is closed", board: map[string]Entry{a: open(0), b: closed(5), c: closed(0)}, want: a, gen: 1, probe: true},
		{name: "preferred half_open is probed", board: map[string]Entry{a: closed(0), b: closed(0), c: halfOpen}, first: 2, want: c, gen: 2, probe: true},
		{name: "preferred not due: the first closed", board: map[string]Entry{a: open(1), b: closed(6), c: closed(0)}, want: b, gen: 6},
		{name: "unknown endpoint reads closed", board: map[string]Entry{a: open(10 * s), b: open(10 * s)}, want: c},
		{name: "none closed: the first due, as a probe", board: map[string]Entry{a: open(10 * s), b: open(0), c: halfOpen}, want: b, gen: 1, probe: true},
		{name: "due probe: preferred first", board: map[string]Entry{a: open(0), b: open(10 * s), c: halfOpen}, first: 2, want: c, gen: 2, probe: true},
		{name: "half_open without a probe out", board: map[string]Entry{a: halfOpen, b: open(10 * s), c: open(10 * s)}, want: a, gen: 2, probe: true},
		{name: "a lost probe's time has come", board: map[string]Entry{a: probing(0), b: open(5 * s), c: open(5 * s)}, want: a, gen: 2, probe: true},
		{name: "all open, not due: fail fast, earliest probe", board: map[string]Entry{a: open(30 * s), b: probing(7 * s), c: open(12 * s)}, retryAt: 7 * s},
		{name: "all open until one instant", board: map[string]Entry{a: open(1 * s), b: open(1 * s), c: open(1 * s)}, retryAt: 1 * s},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			board := NewBoard()
			for ep, e := range tc.board {
				e.Upstream, e.Endpoint = "u", ep
				board.Set(e)
				board.Set(Entry{Upstream: "other", Endpoint: ep, State: Open, OpenUntil: t0.Add(time.Hour)}) // must not matter
			}
			ch, ok := board.Pick(t0, "u", eps, tc.first)
			if tc.want == "" {
				if ok || !ch.RetryAt.Equal(t0.Add(tc.retryAt)) {
					t.Fatalf("Pick = %+v %v, want none, retry at +%v", ch, ok, tc.retryAt)
				}
			} else if !ok || ch.Endpoint != tc.want || eps[ch.Index] != tc.want || ch.Entry.Generation != tc.gen || ch.NeedProbe != tc.probe {
				t.Fatalf("Pick = %+v %v, want %s gen %d probe %v", ch, ok, tc.want, tc.gen, tc.probe)
			}
			if tc.first == 0 {
				ep, probe, ok := board.Route(t0, "u", eps)
				if ep != tc.want || probe != tc.probe || ok != (tc.want != "") {
					t.Fatalf("Route = %q %v %v", ep, probe, ok)
				}
			}
		})
	}
	if _, ok := NewBoard().Pick(t0, "u", nil, 0); ok {
		t.Fatal("Pick over no endpoints chose one")
	}
}

func TestBoardCandidates(t *testing.T) {
	const a, b, c = "http://a:1", "http://b:1", "http://c:1"
	eps := []string{a, b, c}
	closed := func(gen uint64) Entry { return Entry{State: Closed, Generation: gen} }
	open := func(until time.Duration) Entry { return Entry{State: Open, Generation: 1, OpenUntil: t0.Add(until)} }
	probing := func(until time.Duration) Entry {
		return Entry{State: HalfOpen, Generation: 2, OpenUntil: t0.Add(until)}
	}
	halfOpen := Entry{State: HalfOpen, Generation: 2}
	// want lists endpoint:generation, with "?" after a due probe.
	cases := []struct {
		name    string
		board   map[string]Entry // missing: no entry
		want    []string
		retryAt time.Duration // -1: zero
	}{
		{name: "no entries: all, closed at generation 0", want: []string{"a:0", "b:0", "c:0"}, retryAt: -1},
		{name: "all closed, in order", board: map[string]Entry{a: closed(3), b: closed(0), c: closed(7)}, want: []string{"a:3", "b:0", "c:7"}, retryAt: -1},
		{name: "open ones left out, the earliest reopen kept", board: map[string]Entry{a: open(10 * s), b: closed(5), c: open(4 * s)}, want: []string{"b:5"}, retryAt: 4 * s},
		{name: "due probes among the closed", board: map[string]Entry{a: closed(0), b: open(0), c: halfOpen}, want: []string{"a:0", "b:1?", "c:2?"}, retryAt: -1},
		{name: "a probe out is not due", board: map[string]Entry{a: probing(7 * s), b: closed(1), c: probing(0)}, want: []string{"b:1", "c:2?"}, retryAt: 7 * s},
		{name: "none admits: empty, earliest probe", board: map[string]Entry{a: open(30 * s), b: probing(7 * s), c: open(12 * s)}, retryAt: 7 * s},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			board := NewBoard()
			for ep, e := range tc.board {
				e.Upstream, e.Endpoint = "u", ep
				board.Set(e)
				board.Set(Entry{Upstream: "other", Endpoint: ep, State: Open, OpenUntil: t0.Add(time.Hour)}) // must not matter
			}
			prefix := []Choice{{Endpoint: "kept"}}
			got, retryAt := board.Candidates(t0, "u", eps, prefix)
			if len(got) == 0 || got[0].Endpoint != "kept" {
				t.Fatalf("Candidates dropped what dst held: %+v", got)
			}
			var names []string
			for _, ch := range got[1:] {
				if eps[ch.Index] != ch.Endpoint || (ch.Entry.Endpoint != "" && ch.Entry.Endpoint != ch.Endpoint) {
					t.Fatalf("choice %+v does not match its endpoint", ch)
				}
				n := fmt.Sprintf("%s:%d", ch.Endpoint[len("http://"):len("http://")+1], ch.Entry.Generation)
				if ch.NeedProbe {
					n += "?"
				}
				names = append(names, n)
			}
			if fmt.Sprint(names) != fmt.Sprint(tc.want) {
				t.Errorf("candidates %v, want %v", names, tc.want)
			}
			want := time.Time{}
			if tc.retryAt >= 0 {
				want = t0.Add(tc.retryAt)
			}
			if !retryAt.Equal(want) {
				t.Errorf("retryAt %v, want %v", retryAt, want)
			}
			// Pick agrees: it chooses among the candidates, and none means none.
			ch, ok := board.Pick(t0, "u", eps, 0)
			if ok != (len(tc.want) > 0) || (!ok && !ch.RetryAt.Equal(retryAt)) {
				t.Errorf("Pick = %+v %v, candidates %v", ch, ok, names)
			}
			if ok && !slices.ContainsFunc(got[1:], func(c Choice) bool { return c.Endpoint == ch.Endpoint && c.NeedProbe == ch.NeedProbe }) {
				t.Errorf("Pick chose %s (probe %v), not a candidate: %v", ch.Endpoint, ch.NeedProbe, names)
			}
		})
	}
	var none *Board
	if got, retryAt := none.Candidates(t0, "u", eps, nil); len(got) != 3 || !retryAt.IsZero() {
		t.Fatalf("nil board: %+v %v, want every endpoint, closed", got, retryAt)
	}
}

// TestBoardConcurrent: each writer owns its endpoints and keeps updating
// them while readers Get and Pick; run with -race. Every entry a reader sees
// is whole (its fields were set together) and, per endpoint, generations
// never go back.
func TestBoardConcurrent(t *testing.T) {
	const writers, perWriter, readers, updates = 4, 3, 8, 2000
	var eps []string
	for i := range writers * perWriter {
		eps = append(eps, fmt.Sprintf("http://h%d:80", i))
	}
	entry := func(ep string, gen uint64) Entry {
		return Entry{Upstream: "u", Endpoint: ep, Actor: "breaker/u/" + ep, State: State(gen % 3), Generation: gen, OpenUntil: t0.Add(time.Duration(gen) * s)}
	}
	board := NewBoard()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := make(map[string]uint64)
			for n := 0; ; n++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				ep := eps[(r+n)%len(eps)]
				if e, ok := board.Get("u", ep); ok {
					if want := entry(ep, e.Generation); !e.same(&want) {
						errs <- fmt.Errorf("torn entry %+v", e)
						return
					}
					if e.Generation < last[ep] {
						errs <- fmt.Errorf("%s: generation %d after %d", ep, e.Generation, last[ep])
						return
					}
					last[ep] = e.Generation
				}
				if c, ok := board.Pick(t0.Add(time.Duration(n%updates)*s), "u", eps, n%len(eps)); ok && c.Entry.Endpoint != "" && c.Entry.Endpoint != c.Endpoint {
					errs <- fmt.Errorf("Pick chose %s with %s's entry", c.Endpoint, c.Entry.Endpoint)
					return
				}
			}
		}()
	}
	var ww sync.WaitGroup
	for w := range writers {
		ww.Add(1)
		go func() {
			defer ww.Done()
			mine := eps[w*perWriter : (w+1)*perWriter]
			for gen := uint64(1); gen <= updates; gen++ {
				for _, ep := range mine {
					board.Set(entry(ep, gen))
				}
			}
		}()
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, ep := range eps {
		if e, ok := board.Get("u", ep); !ok || e.Generation != updates {
			t.Fatalf("%s: final %+v %v", ep, e, ok)
		}
	}
}

// Reads are on every attempt of every task: they must not allocate.
func TestBoardReadsDoNotAllocate(t *testing.T) {
	board, eps := benchBoard()
	now := t0.Add(5 * s)
	dst := make([]Choice, 0, len(eps))
	if n := testing.AllocsPerRun(100, func() {
		board.Route(now, "u", eps)
		board.Pick(now, "u", eps, 2)
		board.Get("u", eps[1])
		board.Candidates(now, "u", eps, dst[:0])
	}); n != 0 {
		t.Fatalf("%v allocations per read", n)
	}
}

// benchBoard: three endpoints, the first open, the second half_open with
// its probe out, the third closed: Route reads all three.
func benchBoard() (*Board, []string) {
	eps := []string{"https://api.example.com", "https://eu.api.example.com", "https://us.api.example.com"}
	board := NewBoard()
	board.Set(Entry{Upstream: "u", Endpoint: eps[0], State: Open, Generation: 1, OpenUntil: t0.Add(10 * s)})
	board.Set(Entry{Upstream: "u", Endpoint: eps[1], State: HalfOpen, Generation: 2, OpenUntil: t0.Add(10 * s)})
	board.Set(Entry{Upstream: "u", Endpoint: eps[2], State: Closed, Generation: 0})
	for i := range 20 { // other upstreams' breakers
		board.Set(Entry{Upstream: fmt.Sprintf("u%d", i), Endpoint: eps[0]})
	}
	return board, eps
}

func BenchmarkBoardRoute(b *testing.B) {
	board, eps := benchBoard()
	now := t0.Add(5 * s)
	b.Run("first-closed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ep, _, ok := board.Route(now, "u", eps[2:]); !ok || ep != eps[2] {
				b.Fatal(ep, ok)
			}
		}
	})
	b.Run("third-closed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ep, _, ok := board.Route(now, "u", eps); !ok || ep != eps[2] {
				b.Fatal(ep, ok)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				board.Route(now, "u", eps)
			}
		})
	})
}

// Quiet is on every successful call: it counts the success with an atomic
// add and must not allocate.
func TestBoardQuietDoesNotAllocate(t *testing.T) {
	board, eps := benchBoard()
	if n := testing.AllocsPerRun(100, func() {
		if !board.Quiet("u", eps[2], 0) {
			t.Fatal("not quiet")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per Quiet", n)
	}
	if n := board.QuietCalls("u", eps[2]); n != 101 { // AllocsPerRun's warm-up run too
		t.Fatalf("QuietCalls %d, want 101", n)
	}
}

func BenchmarkBoardQuiet(b *testing.B) {
	board, eps := benchBoard()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !board.Quiet("u", eps[2], 0) {
				b.Fatal("not quiet")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				board.Quiet("u", eps[2], 0)
			}
		})
	})
	// What workers do around it: Route reads the same slot meanwhile.
	b.Run("parallel-with-route", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				board.Route(t0, "u", eps[2:])
				board.Quiet("u", eps[2], 0)
			}
		})
	})
}

func BenchmarkBoardGet(b *testing.B) {
	board, eps := benchBoard()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := board.Get("u", eps[2]); !ok {
			b.Fatal("no entry")
		}
	}
}

func BenchmarkBoardSet(b *testing.B) {
	board, eps := benchBoard()
	e := Entry{Upstream: "u", Endpoint: eps[2], State: Closed}
	b.ReportAllocs()
	for b.Loop() {
		e.Generation++
		board.Set(e)
	}
}

func TestQuietOnlyWhenASuccessWouldChangeNothing(t *testing.T) {
	b := NewBoard()
	const up, ep = "sim", "http://a"
	if b.Quiet(up, ep, 0) {
		t.Fatal("an endpoint without an entry is not quiet: its breaker may not have started")
	}
	b.Set(Entry{Upstream: up, Endpoint: ep, State: Closed, Generation: 3})
	if !b.Quiet(up, ep, 3) {
		t.Fatal("closed, no failures, same generation, nothing in flight: quiet")
	}
	if b.Quiet(up, ep, 2) {
		t.Error("a call let through on an older generation is reported")
	}
	b.Reporting(up, ep)
	if b.Quiet(up, ep, 3) {
		t.Error("a failure report on its way: the success must follow it")
	}
	b.Set(Entry{Upstream: up, Endpoint: ep, State: Closed, Generation: 3, Failures: 1})
	b.Reported(up, ep)
	if b.Quiet(up, ep, 3) {
		t.Error("a counted failure: the success resets it")
	}
	b.Set(Entry{Upstream: up, Endpoint: ep, State: Closed, Generation: 3})
	b.Reported(up, ep) // one too many (a restarted breaker): stays at zero
	if !b.Quiet(up, ep, 3) {
		t.Error("back to closed with no failures: quiet again")
	}
	b.Set(Entry{Upstream: up, Endpoint: ep, State: HalfOpen, Generation: 4})
	if b.Quiet(up, ep, 4) {
		t.Error("half_open: a probe's success closes the breaker")
	}
	b.Set(Entry{Upstream: up, Endpoint: ep, State: Closed, Generation: 5})
	before := b.QuietCalls(up, ep)
	for range 3 {
		b.Quiet(up, ep, 5) // quiet: counted
		b.Quiet(up, ep, 4) // not: reported instead, not counted
	}
	if n := b.QuietCalls(up, ep) - before; n != 3 {
		t.Errorf("QuietCalls grew by %d, want 3: only the successes Quiet told the caller to skip", n)
	}
	if n := b.QuietCalls(up, "http://other"); n != 0 {
		t.Errorf("QuietCalls of an endpoint without an entry: %d", n)
	}
	var nilBoard *Board
	nilBoard.Reporting(up, ep)
	nilBoard.Reported(up, ep)
	if nilBoard.Quiet(up, ep, 0) || nilBoard.QuietCalls(up, ep) != 0 {
		t.Error("a nil board is never quiet")
	}
}
