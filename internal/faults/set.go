package faults

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxSpent bounds how many spent faults a Set keeps for its report: a long
// drill injects faults without end, and the oldest spent ones tell least.
const maxSpent = 256

// Set is the faults injected into one runtime. Every method is safe for
// concurrent use. Actors read it on every message without a lock: the
// faults that can still fire are an immutable slice behind an atomic
// pointer, replaced under mu whenever the set changes, and each fault's
// firings are claimed with a compare-and-swap on its own counter.
type Set struct {
	sleep func(time.Duration)

	active atomic.Pointer[[]*entry] // nil when no fault can fire

	mu  sync.Mutex
	seq int
	all []*entry // in injection order, spent ones included
}

type entry struct {
	id    string
	spec  Spec
	fired atomic.Int64
}

// New returns an empty set. sleep carries out delay faults; nil means
// time.Sleep (tests pass one that records instead).
func New(sleep func(time.Duration)) *Set {
	if sleep == nil {
		sleep = time.Sleep
	}
	return &Set{sleep: sleep}
}

// Add validates s against names (the actors a fault can reach now, see
// Validate) and adds it; its id is "f" and a sequence number.
func (s *Set) Add(spec Spec, names []string) (Fault, error) {
	if err := Validate(spec, names); err != nil {
		return Fault{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	e := &entry{id: "f" + strconv.Itoa(s.seq), spec: spec}
	s.all = append(s.all, e)
	s.publishLocked()
	return e.fault(), nil
}

// Remove takes the fault id out of the set, spent or not. A message being
// checked at that moment may still be acted on.
func (s *Set) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.all {
		if e.id == id {
			s.all = append(s.all[:i], s.all[i+1:]...)
			s.publishLocked()
			return true
		}
	}
	return false
}

// Clear removes every fault and returns how many there were.
func (s *Set) Clear() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.all)
	s.all = nil
	s.publishLocked()
	return n
}

// List returns the faults in injection order, spent ones included.
func (s *Set) List() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, len(s.all))
	for i, e := range s.all {
		out[i] = e.fault()
	}
	return out
}

// fire finds the first fault that can still fire on msg in the actor
// named name, and counts the firing. It is the whole check on every
// message: with no fault active it stops after one atomic load.
func (s *Set) fire(name string, msg any) (*entry, bool) {
	act := s.active.Load()
	if act == nil || lifecycle(msg) {
		return nil, false
	}
	typ := "" // the message's type name, worked out once if a filter needs it
	for _, e := range *act {
		if !Match(e.spec.Actor, name) {
			continue
		}
		if e.spec.Message != "" {
			if typ == "" {
				typ = TypeName(msg)
			}
			if typ != e.spec.Message {
				continue
			}
		}
		last, ok := e.claim()
		if !ok {
			continue // spent by another actor meanwhile
		}
		if last {
			s.mu.Lock()
			s.publishLocked()
			s.mu.Unlock()
		}
		return e, true
	}
	return nil, false
}

// claim counts one firing if the fault has one left; last says it was the
// final one.
func (e *entry) claim() (last, ok bool) {
	limit := int64(e.spec.Count)
	for {
		n := e.fired.Load()
		if limit > 0 && n >= limit {
			return false, false
		}
		if e.fired.CompareAndSwap(n, n+1) {
			return n+1 == limit, true
		}
	}
}

func (e *entry) spent() bool {
	return e.spec.Count > 0 && e.fired.Load() >= int64(e.spec.Count)
}

func (e *entry) fault() Fault {
	return Fault{ID: e.id, Spec: e.spec, Fired: int(e.fired.Load()), Active: !e.spent()}
}

// publishLocked drops the oldest spent faults beyond maxSpent and makes
// the ones that can still fire what actors read.
func (s *Set) publishLocked() {
	var live []*entry
	spent := 0
	for i := len(s.all) - 1; i >= 0; i-- {
		e := s.all[i]
		if !e.spent() {
			live = append(live, e)
			continue
		}
		if spent++; spent > maxSpent {
			s.all = append(s.all[:i], s.all[i+1:]...)
		}
	}
	if len(live) == 0 {
		s.active.Store(nil)
		return
	}
	// Collected newest first; the first fault injected matches first.
	for i, j := 0, len(live)-1; i < j; i, j = i+1, j-1 {
		live[i], live[j] = live[j], live[i]
	}
	s.active.Store(&live)
}
