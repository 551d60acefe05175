package cluster

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Membership timing: a node heartbeats every HeartbeatEvery and counts as
// alive while its last heartbeat is under AliveFor old, so one lost
// heartbeat does not drop it and a SIGKILLed node is gone within 3 s.
const (
	HeartbeatEvery = time.Second
	AliveFor       = 3 * time.Second
)

// nodesKey is the sorted set of members: node id scored by the time of its
// last heartbeat (Unix ms, the node's clock: nodes' clocks must agree to
// well under AliveFor, as NTP keeps them).
var nodesKey = Key("nodes")

// sharesKey is a hash of each node's report (field: node id; value: its
// Report as JSON), written with its heartbeat, so that any node can show
// every node's share of the budget and the cluster's totals.
var sharesKey = Key("nodes", "shares")

// Members is this node's view of the cluster, kept by heartbeats (Beat)
// and read lock-free by the limiter (Alive). It implements View.
type Members struct {
	id    string
	alive atomic.Int64

	mu        sync.Mutex
	up        bool
	downSince time.Time
	lastErr   string
	members   []Member
	beats     uint64
	failures  uint64

	leased   func() map[string]uint64 // this node's tokens leased so far, per upstream; nil: none
	last     map[string]uint64        // as of the previous beat
	lastBeat time.Time
	stale    []string // report fields of nodes no longer alive, deleted with the next beat
}

// Report is what a node says of itself with each heartbeat: per upstream,
// the tokens it leased from the shared budget so far and its share of the
// budget over the last heartbeat interval (tokens/s).
type Report struct {
	Leased map[string]uint64  `json:"leased"`
	Share  map[string]float64 `json:"share"`
}

// CountLeased gives Beat this node's running count of leased tokens per
// upstream (the limiters' deer_ratelimit_leased_total), for its Report.
func (m *Members) CountLeased(leased func() map[string]uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leased = leased
}

// report makes this node's Report at now (m.mu held).
func (m *Members) report(now time.Time) Report {
	r := Report{Leased: map[string]uint64{}, Share: map[string]float64{}}
	if m.leased == nil {
		return r
	}
	r.Leased = m.leased()
	if dt := now.Sub(m.lastBeat).Seconds(); !m.lastBeat.IsZero() && dt > 0 {
		for up, n := range r.Leased {
			if prev, ok := m.last[up]; ok && n >= prev {
				r.Share[up] = float64(n-prev) / dt
			}
		}
	}
	m.last, m.lastBeat = maps.Clone(r.Leased), now
	return r
}

// Member is one node as the last heartbeat saw it, with what it last
// reported (nil before its first report).
type Member struct {
	ID       string    `json:"id"`
	LastSeen time.Time `json:"last_seen"`
	*Report
}

// NewMembers returns the view of node id before its first heartbeat: it
// alone is alive, Redis not yet reached.
func NewMembers(id string) *Members {
	m := &Members{id: id}
	m.alive.Store(1)
	return m
}

// NodeID implements View.
func (m *Members) NodeID() string { return m.id }

// Alive implements View: the nodes alive at the last heartbeat that reached
// Redis (at least 1). A node cut off from Redis keeps the count it last saw.
func (m *Members) Alive() int { return int(max(1, m.alive.Load())) }

// Up reports whether the last heartbeat reached Redis.
func (m *Members) Up() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up
}

// Beat records this node's heartbeat and reads the members, in one
// transaction: add itself at now, drop members silent for AliveFor, list
// the rest.
func (m *Members) Beat(ctx context.Context, c redis.Cmdable, now time.Time) error {
	ms := now.UnixMilli()
	m.mu.Lock()
	mine, _ := json.Marshal(m.report(now))
	stale := m.stale
	m.mu.Unlock()
	var list *redis.ZSliceCmd
	var reports *redis.MapStringStringCmd
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, nodesKey, redis.Z{Score: float64(ms), Member: m.id})
		p.ZRemRangeByScore(ctx, nodesKey, "-inf", "("+strconv.FormatInt(ms-AliveFor.Milliseconds(), 10))
		list = p.ZRangeWithScores(ctx, nodesKey, 0, -1)
		p.PExpire(ctx, nodesKey, 10*AliveFor)
		if len(stale) > 0 {
			p.HDel(ctx, sharesKey, stale...)
		}
		p.HSet(ctx, sharesKey, m.id, mine)
		reports = p.HGetAll(ctx, sharesKey)
		p.PExpire(ctx, sharesKey, 10*AliveFor)
		return nil
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failures++
		m.lastErr = err.Error()
		if m.up || m.downSince.IsZero() {
			m.downSince = now
		}
		m.up = false
		return err
	}
	m.beats++
	m.up, m.downSince, m.lastErr = true, time.Time{}, ""
	m.members = m.members[:0]
	alive := map[string]bool{}
	for _, z := range list.Val() {
		id, _ := z.Member.(string)
		alive[id] = true
		mb := Member{ID: id, LastSeen: time.UnixMilli(int64(z.Score))}
		var r Report
		if raw, ok := reports.Val()[id]; ok && json.Unmarshal([]byte(raw), &r) == nil {
			mb.Report = &r
		}
		m.members = append(m.members, mb)
	}
	m.stale = m.stale[:0]
	for id := range reports.Val() {
		if !alive[id] {
			m.stale = append(m.stale, id)
		}
	}
	slices.SortFunc(m.members, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	m.alive.Store(int64(max(1, len(m.members))))
	return nil
}

// Gone reports whether node has left the cluster as far as the last
// heartbeat knows: Redis answered and the node was not among the members.
// Without a heartbeat that answered there is no news, and no node is gone.
func (m *Members) Gone(node string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.up || len(m.members) == 0 {
		return false
	}
	for _, mb := range m.members {
		if mb.ID == node {
			return false
		}
	}
	return true
}

// Leave removes this node at once (a clean stop), rather than after
// AliveFor.
func (m *Members) Leave(ctx context.Context, c redis.Cmdable) error {
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, nodesKey, m.id)
		p.HDel(ctx, sharesKey, m.id)
		return nil
	})
	return err
}

// Health is the cluster as /health shows it.
type Health struct {
	NodeID     string   `json:"node_id"`
	RedisUp    bool     `json:"redis_up"`
	RedisError string   `json:"redis_error,omitempty"`
	DownFor    float64  `json:"redis_down_seconds,omitempty"` // since the first failed heartbeat
	NodesAlive int      `json:"nodes_alive"`
	Members    []Member `json:"members"`
	Heartbeats uint64   `json:"heartbeats"`
	Failures   uint64   `json:"heartbeat_failures"`
	// Totals sums the members' reports: per upstream, the tokens leased by
	// the nodes alive and their shares together (the cluster's send rate).
	Totals Report `json:"totals"`
}

// Health returns the view at now.
func (m *Members) Health(now time.Time) Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := Health{
		NodeID: m.id, RedisUp: m.up, RedisError: m.lastErr, NodesAlive: m.Alive(),
		Members: slices.Clone(m.members), Heartbeats: m.beats, Failures: m.failures,
	}
	if h.Members == nil {
		h.Members = []Member{}
	}
	h.Totals = Report{Leased: map[string]uint64{}, Share: map[string]float64{}}
	for _, mb := range h.Members {
		if mb.Report == nil {
			continue
		}
		for up, n := range mb.Leased {
			h.Totals.Leased[up] += n
		}
		for up, r := range mb.Share {
			h.Totals.Share[up] += r
		}
	}
	if !m.up && !m.downSince.IsZero() {
		h.DownFor = now.Sub(m.downSince).Seconds()
	}
	return h
}
