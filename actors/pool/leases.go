package pool

import (
	"sort"
	"time"
)

// Request identifies who asked for a lease. Owner is a comparable key for the
// asker (the actor uses the PID's string form); Ref is the asker's own id.
// Tag is carried through untouched (the actor keeps the reply-to PID there).
type Request struct {
	Owner string
	Ref   uint64
	Tag   any
	// Endpoints restricts where the lease's call may go; empty means any.
	Endpoints []string
}

// Lease is a granted connection lease.
type Lease struct {
	ID    uint64
	Req   Request
	Since time.Time // when it was granted
	Gen   uint64    // transport generation it was granted on
	// Endpoint is the base URL the lease's call goes to.
	Endpoint string
}

// Leases is the lease accounting core: at most max leases are out at once;
// further requests wait FIFO and are granted as leases come back. Time is
// passed in; it starts no goroutines and is not safe for concurrent use.
type Leases struct {
	max     int
	gen     uint64
	nextID  uint64
	active  map[uint64]*Lease
	waiting []Request

	peak                          int
	acquired, released, reclaimed uint64
}

// NewLeases returns an empty ledger allowing max leases (at least 1). Lease
// ids count up from idBase+1: a restarted actor passes a fresh base so that a
// late release of a lease from its previous life cannot hit a new lease.
func NewLeases(max int, idBase uint64) *Leases {
	return &Leases{max: atLeast1(max), nextID: idBase, active: map[uint64]*Lease{}}
}

func atLeast1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Acquire grants a lease at once when one is free; otherwise it queues req
// and reports false (the lease comes out of a later Release, Cancel,
// Reclaim or SetMax).
func (l *Leases) Acquire(now time.Time, req Request) (Lease, bool) {
	if len(l.active) < l.max && len(l.waiting) == 0 {
		return l.grant(now, req), true
	}
	l.waiting = append(l.waiting, req)
	return Lease{}, false
}

func (l *Leases) grant(now time.Time, req Request) Lease {
	l.nextID++
	ls := &Lease{ID: l.nextID, Req: req, Since: now, Gen: l.gen}
	l.active[ls.ID] = ls
	l.acquired++
	if len(l.active) > l.peak {
		l.peak = len(l.active)
	}
	return *ls
}

// Release returns lease id. It reports the lease and whether it was out (a
// reclaimed or unknown id is ignored), and the waiting requests it let in.
func (l *Leases) Release(now time.Time, id uint64) (Lease, bool, []Lease) {
	ls, ok := l.active[id]
	if !ok {
		return Lease{}, false, nil
	}
	delete(l.active, id)
	l.released++
	return *ls, true, l.admit(now)
}

// Cancel withdraws owner's request ref: a waiting request leaves the queue, a
// granted lease is released. It returns the leases granted to waiters.
func (l *Leases) Cancel(now time.Time, owner string, ref uint64) []Lease {
	for i, w := range l.waiting {
		if w.Owner == owner && w.Ref == ref {
			l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
			return nil
		}
	}
	for id, ls := range l.active {
		if ls.Req.Owner == owner && ls.Req.Ref == ref {
			_, _, granted := l.Release(now, id)
			return granted
		}
	}
	return nil
}

// Reclaim takes back leases held for maxAge or longer (their holder is presumed
// dead: a worker is cancelled after worker_timeout). It returns the reclaimed
// leases and those granted to waiters in their place.
func (l *Leases) Reclaim(now time.Time, maxAge time.Duration) (reclaimed, granted []Lease) {
	for id, ls := range l.active {
		if now.Sub(ls.Since) >= maxAge {
			reclaimed = append(reclaimed, *ls)
			delete(l.active, id)
			l.reclaimed++
		}
	}
	if len(reclaimed) == 0 {
		return nil, nil
	}
	sort.Slice(reclaimed, func(i, j int) bool { return reclaimed[i].ID < reclaimed[j].ID })
	return reclaimed, l.admit(now)
}

// SetEndpoint records which endpoint lease id's call goes to.
func (l *Leases) SetEndpoint(id uint64, endpoint string) {
	if ls, ok := l.active[id]; ok {
		ls.Endpoint = endpoint
	}
}

// InFlight counts the active leases per endpoint.
func (l *Leases) InFlight() map[string]int {
	out := make(map[string]int, 2)
	for _, ls := range l.active {
		out[ls.Endpoint]++
	}
	return out
}

// Oldest returns when the oldest active lease was granted.
func (l *Leases) Oldest() (time.Time, bool) {
	var oldest time.Time
	found := false
	for _, ls := range l.active {
		if !found || ls.Since.Before(oldest) {
			oldest, found = ls.Since, true
		}
	}
	return oldest, found
}

// SetMax changes the lease limit. Lowering it revokes nothing: leases out
// stay out and new requests wait until active falls below the new max.
func (l *Leases) SetMax(now time.Time, max int) []Lease {
	l.max = atLeast1(max)
	return l.admit(now)
}

// SetGen sets the transport generation recorded on leases granted from now.
func (l *Leases) SetGen(gen uint64) { l.gen = gen }

// ActiveOn counts the leases out on transport generation gen.
func (l *Leases) ActiveOn(gen uint64) int {
	n := 0
	for _, ls := range l.active {
		if ls.Gen == gen {
			n++
		}
	}
	return n
}

func (l *Leases) admit(now time.Time) []Lease {
	var granted []Lease
	for len(l.waiting) > 0 && len(l.active) < l.max {
		req := l.waiting[0]
		l.waiting = l.waiting[1:]
		granted = append(granted, l.grant(now, req))
	}
	return granted
}

// LeaseStats is a snapshot of the ledger.
type LeaseStats struct {
	Active, Max, Waiting, Peak    int
	Acquired, Released, Reclaimed uint64
}

// Utilization is active/max.
func (s LeaseStats) Utilization() float64 { return float64(s.Active) / float64(s.Max) }

// Stats returns the current counts.
func (l *Leases) Stats() LeaseStats {
	return LeaseStats{
		Active: len(l.active), Max: l.max, Waiting: len(l.waiting), Peak: l.peak,
		Acquired: l.acquired, Released: l.released, Reclaimed: l.reclaimed,
	}
}
