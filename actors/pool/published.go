package pool

import (
	"sync/atomic"
	"time"

	"github.com/deer-runtime/deer/messages"
)

// publishEvery bounds how often the pool copies its numbers into its
// Published snapshot: often enough for /metrics, rarely enough to cost
// nothing on the lease path.
const publishEvery = 50 * time.Millisecond

// Published is the pool's last published numbers, for /metrics to read
// when the pool is too busy to answer a StatsQuery in time (under load its
// mailbox holds thousands of lease requests). Only the pool actor stores;
// anyone may Load. Safe for concurrent use; a nil Published is empty.
type Published struct {
	stats atomic.Pointer[messages.PoolStats]
}

// Load returns a copy of the last published numbers, marked as a snapshot,
// or nil when none was published yet.
func (p *Published) Load() *messages.PoolStats {
	if p == nil {
		return nil
	}
	s := p.stats.Load()
	if s == nil {
		return nil
	}
	c := *s
	c.Snapshot = true
	return &c
}

func (p *Published) store(s *messages.PoolStats) {
	if p != nil {
		p.stats.Store(s)
	}
}
