package chaos

import (
	"fmt"
	"sync"
	"time"
)

// Ledger accounts for every request of a drill (see the package doc for
// what answered, lost and duplicate mean). Its methods are safe for
// concurrent use; ids are 1-based, in sending order.
type Ledger struct {
	mu    sync.Mutex
	start time.Time
	reqs  []*entry       // reqs[id-1]
	tasks map[string]int // deer task id → the request it answered
	dups  []Duplicate
}

// entry is one request.
type entry struct {
	kind  Kind
	phase int
	sent  time.Duration // since the start, as scheduled

	answered bool          // its caller got an answer
	at       time.Duration // when
	ok       bool
	failure  string // why not ok: "502 upstream_error", "wrong_answer", …
	cache    string // X-Deer-Cache of the answer
	lostWhy  string // why there was no answer, when there was none
	named    int    // answers whose content named this request
}

// Duplicate is one second answer.
type Duplicate struct {
	ID    int    `json:"id"`
	Phase int    `json:"phase"`
	Why   string `json:"why"`
}

// NewLedger starts a ledger whose times count from start.
func NewLedger(start time.Time) *Ledger {
	return &Ledger{start: start, tasks: map[string]int{}}
}

// Send records a request of kind sent (due) at t in phase, and returns its id.
func (l *Ledger) Send(kind Kind, phase int, t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, &entry{kind: kind, phase: phase, sent: t.Sub(l.start)})
	return len(l.reqs)
}

// Answer is what a request's caller got.
type Answer struct {
	At      time.Time
	OK      bool   // a 2xx answer with the request's own content
	Failure string // when not OK: HTTP status and error code, or what was wrong
	// Names is the request the answer's content names: 0 when it names
	// none (errors, cache hits) or names the request itself.
	Names  int
	TaskID string // deer's task id for it (X-Deer-Task-Id), if any
	Cache  string // X-Deer-Cache
}

// Answer records the answer to request id. An answer that names another
// request counts as a wrong answer to id and as an answer for the one it
// names; a task id given to two requests and a second answer to id are
// duplicates.
func (l *Ledger) Answer(id int, a Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	if e.answered {
		l.dup(id, e.phase, "answered twice")
		return
	}
	e.answered, e.at, e.ok, e.failure, e.cache, e.lostWhy = true, a.At.Sub(l.start), a.OK, a.Failure, a.Cache, ""
	named := id
	if a.Names != 0 && a.Names != id {
		e.ok = false
		e.failure = "wrong_answer"
		named = a.Names
	}
	if n := l.get(named); n != nil {
		n.named++
		if n.named > 1 {
			l.dup(named, n.phase, fmt.Sprintf("request %d got request %d's answer", id, named))
		}
	}
	if a.TaskID != "" {
		if other, ok := l.tasks[a.TaskID]; ok && other != id {
			l.dup(id, e.phase, fmt.Sprintf("deer task %s answered requests %d and %d", a.TaskID, other, id))
		} else {
			l.tasks[a.TaskID] = id
		}
	}
}

// Unanswered records why request id got no answer (a connection that ended
// without one, a task deer no longer knows, the deadline). An answer
// recorded before or after wins.
func (l *Ledger) Unanswered(id int, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil && !e.answered {
		e.lostWhy = why
	}
}

// Conflict records a second, different answer for request id (an async
// task whose terminal result changed).
func (l *Ledger) Conflict(id int, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil {
		l.dup(id, e.phase, why)
	}
}

func (l *Ledger) get(id int) *entry {
	if id < 1 || id > len(l.reqs) {
		return nil
	}
	return l.reqs[id-1]
}

func (l *Ledger) dup(id, phase int, why string) {
	l.dups = append(l.dups, Duplicate{ID: id, Phase: phase, Why: why})
}

// Counts is the accounting of a set of requests.
type Counts struct {
	Sent       int            `json:"sent"`
	Answered   int            `json:"answered"`
	Succeeded  int            `json:"succeeded"`
	Failed     map[string]int `json:"failed"`   // by "STATUS code" or what was wrong
	Lost       int            `json:"lost"`     // must be 0
	LostWhy    map[string]int `json:"lost_why"` // by reason
	Duplicates int            `json:"duplicates"`
	// ByKind counts sent and succeeded per request kind.
	ByKind map[Kind]KindCounts `json:"by_kind"`
	// CacheHits are answers served from one of deerd's cache tiers.
	CacheHits int `json:"cache_hits"`
}

// KindCounts is one kind's part of a Counts.
type KindCounts struct {
	Sent      int `json:"sent"`
	Succeeded int `json:"succeeded"`
}

func newCounts() Counts {
	return Counts{Failed: map[string]int{}, LostWhy: map[string]int{}, ByKind: map[Kind]KindCounts{}}
}

// FailedTotal is the number of answered requests that did not succeed.
func (c Counts) FailedTotal() int { return c.Answered - c.Succeeded }

// SuccessPct is succeeded / sent × 100 (NaN-free: 100 with nothing sent).
func (c Counts) SuccessPct() float64 {
	if c.Sent == 0 {
		return 100
	}
	return 100 * float64(c.Succeeded) / float64(c.Sent)
}

func (c *Counts) add(e *entry) {
	c.Sent++
	k := c.ByKind[e.kind]
	k.Sent++
	switch {
	case !e.answered:
		c.Lost++
		why := e.lostWhy
		if why == "" {
			why = "unanswered"
		}
		c.LostWhy[why]++
	case e.ok:
		c.Answered++
		c.Succeeded++
		k.Succeeded++
	default:
		c.Answered++
		c.Failed[e.failure]++
	}
	if len(e.cache) > 4 && e.cache[:4] == "hit-" {
		c.CacheHits++
	}
	c.ByKind[e.kind] = k
}

// Tally counts the requests of each of phases phases (by the phase they
// were sent in) and of all; a request not answered by now is lost.
func (l *Ledger) Tally(phases int) (perPhase []Counts, total Counts) {
	l.mu.Lock()
	defer l.mu.Unlock()
	perPhase = make([]Counts, phases)
	for i := range perPhase {
		perPhase[i] = newCounts()
	}
	total = newCounts()
	for _, e := range l.reqs {
		total.add(e)
		if e.phase >= 0 && e.phase < phases {
			perPhase[e.phase].add(e)
		}
	}
	for _, d := range l.dups {
		total.Duplicates++
		if d.Phase >= 0 && d.Phase < phases {
			perPhase[d.Phase].Duplicates++
		}
	}
	return perPhase, total
}

// Failure is one request that did not succeed, for the record.
type Failure struct {
	ID      int     `json:"id"`
	Kind    Kind    `json:"kind"`
	Phase   int     `json:"phase"`
	SentS   float64 `json:"sent_s"`            // seconds from the start, as scheduled
	AtS     float64 `json:"at_s,omitempty"`    // when answered
	Failure string  `json:"failure,omitempty"` // why it failed, if answered
	Lost    string  `json:"lost,omitempty"`    // why it is lost, if not
}

// Failures lists the requests that did not succeed, in id order, at most
// limit of them.
func (l *Ledger) Failures(limit int) []Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Failure
	for i, e := range l.reqs {
		if e.ok || len(out) >= limit {
			continue
		}
		f := Failure{ID: i + 1, Kind: e.kind, Phase: e.phase, SentS: e.sent.Seconds()}
		if e.answered {
			f.AtS, f.Failure = e.at.Seconds(), e.failure
		} else {
			f.Lost = e.lostWhy
			if f.Lost == "" {
				f.Lost = "unanswered"
			}
		}
		out = append(out, f)
	}
	return out
}

// Duplicates lists the duplicates found, in the order found.
func (l *Ledger) Duplicates() []Duplicate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Duplicate(nil), l.dups...)
}

// Series is the timeline of the requests in buckets of width from the
// start: sent (by send time), succeeded and failed (by answer time), and
// lost (by send time), per bucket; n buckets.
func (l *Ledger) Series(width time.Duration, n int) (sent, succeeded, failed, lost []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sent, succeeded, failed, lost = make([]int, n), make([]int, n), make([]int, n), make([]int, n)
	bucket := func(d time.Duration) int {
		return min(max(int(d/width), 0), n-1)
	}
	for _, e := range l.reqs {
		sent[bucket(e.sent)]++
		switch {
		case !e.answered:
			lost[bucket(e.sent)]++
		case e.ok:
			succeeded[bucket(e.at)]++
		default:
			failed[bucket(e.at)]++
		}
	}
	return sent, succeeded, failed, lost
}
