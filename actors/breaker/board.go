package breaker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one breaker's state as published on a Board.
type Entry struct {
	Upstream   string
	Endpoint   string // the endpoint's base URL, as in conf.Upstream.EndpointURLs()
	Actor      string // the breaker actor's name, breaker/UPSTREAM/ENDPOINT
	State      State
	Generation uint64 // report a call let through on this entry with it
	// OpenUntil is when a probe may go out: an open breaker's reopen time
	// (circuit_breaker_timeout, or a longer Retry-After), or, in half_open
	// with the probe out, when that probe is presumed lost. Zero when closed,
	// and in half_open with no probe out (a probe may go now).
	OpenUntil time.Time
	// Failures are the consecutive failures a closed breaker has counted.
	Failures int
}

// Admits says how a call may go to this endpoint at now: directly when the
// breaker is closed (probe false, ok true); only as a probe, which the
// breaker actor must grant, when it is open or half_open and OpenUntil has
// come (probe true, ok true); not at all otherwise (ok false).
func (e *Entry) Admits(now time.Time) (probe, ok bool) {
	if e.State == Closed {
		return false, true
	}
	return true, !now.Before(e.OpenUntil)
}

func (e *Entry) same(o *Entry) bool {
	return e.Upstream == o.Upstream && e.Endpoint == o.Endpoint && e.Actor == o.Actor &&
		e.State == o.State && e.Generation == o.Generation && e.OpenUntil.Equal(o.OpenUntil) &&
		e.Failures == o.Failures
}

type slot struct {
	entry atomic.Pointer[Entry]
	// inFlight counts failure reports sent to the breaker and not yet
	// processed by it (Reporting, Reported): until they are, a success
	// still has a failure count to reset.
	inFlight atomic.Int64
	// quiet counts the successes Quiet told callers not to report: calls
	// the breaker counts in its failure window without a message each
	// (QuietCalls). Only ever incremented.
	quiet atomic.Uint64
}

// lane is one upstream's slots. Upstreams have few endpoints: a short list
// scanned by string comparison beats hashing; a map serves long lists.
type lane struct {
	endpoints []string
	slots     []*slot
	index     map[string]*slot // when len(endpoints) > laneScan
}

const laneScan = 8

func (l *lane) slot(endpoint string) *slot {
	if l == nil {
		return nil
	}
	if l.index != nil {
		return l.index[endpoint]
	}
	for i, ep := range l.endpoints {
		if ep == endpoint {
			return l.slots[i]
		}
	}
	return nil
}

// with returns a copy of l with s added for endpoint.
func (l *lane) with(endpoint string, s *slot) *lane {
	n := &lane{}
	if l != nil {
		n.endpoints = append(n.endpoints, l.endpoints...)
		n.slots = append(n.slots, l.slots...)
	}
	n.endpoints = append(n.endpoints, endpoint)
	n.slots = append(n.slots, s)
	if len(n.endpoints) > laneScan {
		n.index = make(map[string]*slot, len(n.endpoints))
		for i, ep := range n.endpoints {
			n.index[ep] = n.slots[i]
		}
	}
	return n
}

// Board is a read-mostly view of every breaker's state, so that a worker
// learns whether an endpoint's breaker lets a call through without a
// message exchange (DESIGN "The hot path stays short").
//
// Entries are keyed by upstream name and endpoint URL (two upstreams on one
// URL have two breakers). Concurrency contract: each entry is written only
// by its breaker actor (Set, on its own goroutine: at start with the
// restored state, and whenever its state, generation or OpenUntil
// changes). Any number of goroutines read at once with Get, Route, Pick and
// Candidates: reads take no lock and do not allocate (an atomic load of the
// index, one lookup of the upstream, and per endpoint a short scan and an
// atomic load; Candidates appends to the slice it is given).
// Quiet, asked once per successful call, also counts the successes it
// tells callers not to report, with an atomic add on the endpoint's slot;
// the breaker actor reads that running total (QuietCalls) on its own
// goroutine, so that its failure window counts every call without a
// message for each success.
// The index is copied on write when an endpoint is first set, which happens
// once per breaker, at startup. A reader sees every entry either before or
// after a Set, never half-written; entries of different endpoints may be
// seen from slightly different instants.
//
// The board is advisory: it can lag its breaker by the time the actor takes
// to process a message. The breaker actor stays the authority: a probe is
// granted only by CheckBreaker, and a result reported with a generation the
// breaker has left is ignored. An endpoint with no entry (no breaker, or
// not yet started) reads as closed, generation 0. A nil *Board reads every
// endpoint as closed and ignores Set. Entries are never removed: the board
// outlives restarts of the actors writing it.
type Board struct {
	mu    sync.Mutex // serialises inserts
	lanes atomic.Pointer[map[string]*lane]
}

// NewBoard returns an empty board.
func NewBoard() *Board { return &Board{} }

func (b *Board) lane(upstream string) *lane {
	if b == nil {
		return nil
	}
	m := b.lanes.Load()
	if m == nil {
		return nil
	}
	return (*m)[upstream]
}

// Get returns the entry of endpoint of upstream; ok is false when none was set.
func (b *Board) Get(upstream, endpoint string) (e Entry, ok bool) {
	if s := b.lane(upstream).slot(endpoint); s != nil {
		if p := s.entry.Load(); p != nil {
			return *p, true
		}
	}
	return Entry{}, false
}

// Set publishes e under e.Upstream and e.Endpoint. Only the breaker actor
// owning that endpoint calls it.
func (b *Board) Set(e Entry) {
	if b == nil {
		return
	}
	p := &e
	if s := b.lane(e.Upstream).slot(e.Endpoint); s != nil {
		s.entry.Store(p)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.lane(e.Upstream)
	if s := old.slot(e.Endpoint); s != nil { // inserted meanwhile
		s.entry.Store(p)
		return
	}
	s := &slot{}
	s.entry.Store(p)
	m := make(map[string]*lane)
	if cur := b.lanes.Load(); cur != nil {
		for k, v := range *cur {
			m[k] = v
		}
	}
	m[e.Upstream] = old.with(e.Endpoint, s)
	b.lanes.Store(&m)
}

// Quiet reports whether a success of a call let through on generation gen
// would change nothing at endpoint's breaker but its count of calls: it is
// closed, has no consecutive failure to reset, and no failure report is on
// its way to it. A caller skips reporting such a success: one message less
// per call on the hot path. Anything else (no entry yet, another
// generation, a failure counted or in flight) reads as not quiet, and the
// success is reported.
//
// When it answers true, Quiet counts the success on the board (an atomic
// add; no allocation), and the breaker adds it to the calls of its failure
// window when it next reads QuietCalls. So ask it exactly once per
// successful call, and skip the report only when it says true.
func (b *Board) Quiet(upstream, endpoint string, gen uint64) bool {
	s := b.lane(upstream).slot(endpoint)
	if s == nil {
		return false
	}
	e := s.entry.Load()
	if e == nil || e.State != Closed || e.Failures != 0 || e.Generation != gen || s.inFlight.Load() != 0 {
		return false
	}
	s.quiet.Add(1)
	return true
}

// QuietCalls returns how many successes of calls to endpoint Quiet has
// counted since the board was made (0 without an entry): a running total
// that only grows. The endpoint's breaker reads it, on its own goroutine,
// before each result it records.
func (b *Board) QuietCalls(upstream, endpoint string) uint64 {
	if s := b.lane(upstream).slot(endpoint); s != nil {
		return s.quiet.Load()
	}
	return 0
}

// Reporting counts a failure report about to be sent to endpoint's breaker;
// the breaker calls Reported once it has processed it. A report that never
// arrives (its breaker stopped for good) leaves the count up, which only
// means successes are always reported: the safe side.
func (b *Board) Reporting(upstream, endpoint string) {
	if s := b.lane(upstream).slot(endpoint); s != nil {
		s.inFlight.Add(1)
	}
}

// Reported is the breaker's side of Reporting.
func (b *Board) Reported(upstream, endpoint string) {
	s := b.lane(upstream).slot(endpoint)
	if s == nil {
		return
	}
	for {
		n := s.inFlight.Load()
		if n <= 0 || s.inFlight.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// Choice is what Pick chose.
type Choice struct {
	Index    int    // into the endpoints given to Pick
	Endpoint string // endpoints[Index]
	Entry    Entry  // its entry (zero, i.e. closed at generation 0, when none was set)
	// NeedProbe: the breaker is open or half_open and its OpenUntil has
	// come. Only the breaker actor (Entry.Actor) can let the call through:
	// send it CheckBreaker and go only when the verdict is Allowed,
	// reporting with the verdict's generation. When refused (another caller
	// holds the probe), Pick again: the actor sets its board entry before it
	// answers, so the next Pick skips the endpoint, or fails fast.
	NeedProbe bool
	// RetryAt, when no endpoint admits a call, is the earliest OpenUntil
	// among them: when one may take a probe (for Retry-After).
	RetryAt time.Time
}

// Pick chooses the endpoint of upstream for a call at now. endpoints are
// the upstream's endpoints (conf.Upstream.EndpointURLs()); first is the
// index of the preferred one (the least loaded, say; out of range means
// 0), the others follow in order. It picks:
//
//  1. the preferred endpoint, when its breaker is closed, or due for a
//     probe (NeedProbe): an endpoint that recovers gets its probe when its
//     turn comes, instead of waiting for every other endpoint to fail;
//  2. else the first endpoint whose breaker is closed;
//  3. else the first whose OpenUntil has come (NeedProbe);
//
// and reports ok false when every breaker is open (or half_open with its
// probe out) and not yet due: fail fast with circuit_open, retry at RetryAt.
// Endpoints without an entry read as closed.
func (b *Board) Pick(now time.Time, upstream string, endpoints []string, first int) (c Choice, ok bool) {
	idx, e, probe, retryAt := b.pick(now, upstream, endpoints, first)
	if idx < 0 {
		return Choice{RetryAt: retryAt}, false
	}
	c = Choice{Index: idx, Endpoint: endpoints[idx], NeedProbe: probe}
	if e != nil {
		c.Entry = *e
	}
	return c, true
}

// Route is Pick preferring the first endpoint (the base URL): it returns
// the endpoint to call, whether the call must first be granted as a probe
// by the endpoint's breaker actor (see Choice.NeedProbe: when refused,
// Route again), and ok false when every breaker is open and not yet due
// (fail fast with circuit_open).
func (b *Board) Route(now time.Time, upstream string, endpoints []string) (endpoint string, needProbe, ok bool) {
	idx, _, probe, _ := b.pick(now, upstream, endpoints, 0)
	if idx < 0 {
		return "", false, false
	}
	return endpoints[idx], probe, true
}

// pick is Pick without copying entries: idx -1 when none admits a call; e
// nil when the chosen endpoint has no entry.
func (b *Board) pick(now time.Time, upstream string, endpoints []string, first int) (idx int, e *Entry, probe bool, retryAt time.Time) {
	n := len(endpoints)
	if first < 0 || first >= n {
		first = 0
	}
	l := b.lane(upstream)
	probeIdx := -1
	var probeEntry *Entry
	for i := range n {
		idx := i
		switch {
		case i == 0:
			idx = first
		case i <= first:
			idx = i - 1
		}
		var e *Entry
		if s := l.slot(endpoints[idx]); s != nil {
			e = s.entry.Load()
		}
		if e == nil {
			return idx, nil, false, time.Time{} // no breaker: closed
		}
		needProbe, admits := e.Admits(now)
		switch {
		case admits && (!needProbe || i == 0):
			return idx, e, needProbe, time.Time{}
		case admits && probeIdx < 0:
			probeIdx, probeEntry = idx, e
		case !admits && (retryAt.IsZero() || e.OpenUntil.Before(retryAt)):
			retryAt = e.OpenUntil
		}
	}
	if probeIdx >= 0 {
		return probeIdx, probeEntry, true, time.Time{}
	}
	return -1, nil, false, retryAt
}

// Candidates is Pick for a caller that leaves the choice among endpoints to
// another component (the pool, by fewest calls in flight). It appends to
// dst, in endpoint order, the Choice of every endpoint of upstream that
// admits a call at now: closed (or without an entry), or due for a probe
// (NeedProbe, granted only by the breaker actor as with Pick). The caller
// tries the due ones first, so a recovered endpoint comes back while the
// others still work, and leaves the rest to the pool. retryAt is the
// earliest OpenUntil among the endpoints that admit no call (zero when all
// do): with no candidate, when the next probe may go. Reads as Pick does;
// it allocates only to grow dst.
func (b *Board) Candidates(now time.Time, upstream string, endpoints []string, dst []Choice) (cands []Choice, retryAt time.Time) {
	l := b.lane(upstream)
	for i, ep := range endpoints {
		c := Choice{Index: i, Endpoint: ep} // no entry: the zero Entry, closed
		if s := l.slot(ep); s != nil {
			if e := s.entry.Load(); e != nil {
				c.Entry = *e
			}
		}
		probe, ok := c.Entry.Admits(now)
		if !ok {
			if retryAt.IsZero() || c.Entry.OpenUntil.Before(retryAt) {
				retryAt = c.Entry.OpenUntil
			}
			continue
		}
		c.NeedProbe = probe
		dst = append(dst, c)
	}
	return dst, retryAt
}
