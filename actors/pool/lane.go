package pool

import (
	"net/http"
	"sync/atomic"
)

// Lane lets workers take and give back connection leases of a
// single-endpoint upstream without a message to pool/UPSTREAM, as the
// limiter's Reservoir does for tokens (DESIGN: the hot path stays short).
//
// The pool lends the lane the capacity its ledger does not use, one slot
// kept back, while nobody waits in the ledger. A worker takes a slot with
// one atomic operation and gives it back with two. When a request has to
// wait in the ledger (the lane ran dry, the ledger is full), or
// max_connections comes down, the pool closes the lane and takes lent slots
// back as they return: each return while closed nudges the pool, which
// hands the slot to the ledger and so to the first waiter. Slots lent and
// leases granted by the ledger never add up to more than max_connections.
//
// A lane lease is not tracked one by one: worker_timeout reclaim does not
// apply to it (the worker's executor always gives its lease back when its
// call ends, cancelled or not). Safe for concurrent use; a nil Lane is
// always closed.
type Lane struct {
	grant  atomic.Pointer[laneGrant] // what a slot is for; nil: closed
	free   atomic.Int64              // lent slots not in use
	out    atomic.Int64              // lent slots in use
	taken  atomic.Uint64             // leases taken from the lane, ever
	ledger atomic.Int64              // the pool's own leases out, for the gauge
	peak   atomic.Int64              // most leases out at once (lane and ledger) seen by Take
	nudge  atomic.Pointer[func()]    // set by the pool: a slot came back while closed
}

// laneGrant is what the lane's leases are good for: one endpoint, through
// the pool's current client.
type laneGrant struct {
	endpoint string
	client   *http.Client
}

// LaneLease is a lease taken from a Lane.
type LaneLease struct {
	Client   *http.Client
	Endpoint string
}

// Take takes a slot for a call to endpoint. ok is false when the lane is
// closed, serves another endpoint, or has no free slot: ask the pool.
func (l *Lane) Take(endpoint string) (LaneLease, bool) {
	if l == nil {
		return LaneLease{}, false
	}
	g := l.grant.Load()
	if g == nil || g.endpoint != endpoint {
		return LaneLease{}, false
	}
	// out goes up before free goes down, and free up before out down on
	// Return: a reader of both (a restarting pool) may count a slot twice,
	// never miss one.
	out := l.out.Add(1)
	for {
		n := l.free.Load()
		if n <= 0 {
			l.out.Add(-1)
			return LaneLease{}, false
		}
		if l.free.CompareAndSwap(n, n-1) {
			break
		}
	}
	l.taken.Add(1)
	for busy := out + l.ledger.Load(); ; {
		p := l.peak.Load()
		if busy <= p || l.peak.CompareAndSwap(p, busy) {
			break
		}
	}
	return LaneLease{Client: g.client, Endpoint: endpoint}, true
}

// Return gives a slot taken with Take back.
func (l *Lane) Return() {
	l.free.Add(1)
	l.out.Add(-1)
	// Checked after the slot is back: a pool closing the lane meanwhile
	// either sees the slot when it drains or is nudged to look again.
	if l.grant.Load() == nil {
		if f := l.nudge.Load(); f != nil {
			(*f)()
		}
	}
}

// Taken is the number of leases taken from the lane, ever.
func (l *Lane) Taken() uint64 {
	if l == nil {
		return 0
	}
	return l.taken.Load()
}

// InUse is the number of lane leases out.
func (l *Lane) InUse() int64 {
	if l == nil {
		return 0
	}
	return l.out.Load()
}

// open lets workers take slots for endpoint through client.
func (l *Lane) open(endpoint string, client *http.Client) {
	if g := l.grant.Load(); g == nil || g.endpoint != endpoint || g.client != client {
		l.grant.Store(&laneGrant{endpoint: endpoint, client: client})
	}
}

// close stops new takes and returns the free slots, which the caller takes
// back from the lane.
func (l *Lane) close() int {
	l.grant.Store(nil)
	return int(l.free.Swap(0))
}
