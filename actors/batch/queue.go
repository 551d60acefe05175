package batch

import (
	"errors"
	"math"
	"sort"
	"time"

	"github.com/deer-runtime/deer/conf"
)

// ErrQueueFull is returned by Add when max_queue_size items are pending.
var ErrQueueFull = errors.New("batch queue full")

// Settings are the batch_processing keys a Queue runs on.
type Settings struct {
	Size            int           // max inputs per batch
	Timeout         time.Duration // longest wait after a batch's first item
	MaxQueue        int           // max pending items
	PriorityEnabled bool          // priority-0 items flush their batch at once
	Adaptive        bool          // size batches to the observed arrival rate
}

// SettingsFrom reads batch_processing. Priorities count only when advanced
// optimization is on and there is more than one level (SPEC §3: with it off
// priorities are off, and with one level everything is level 0).
func SettingsFrom(cfg *conf.Config) Settings {
	bp := cfg.BatchProcessing
	return Settings{
		Size:            max(1, bp.BatchSize),
		Timeout:         conf.Seconds(bp.BatchTimeout),
		MaxQueue:        bp.MaxQueueSize,
		PriorityEnabled: bp.PriorityEnabled && cfg.EnableAdvancedOptimization && cfg.ParallelExecution.PriorityLevels > 1,
		Adaptive:        bp.AdaptiveSizing,
	}
}

// Item is one embedding call waiting for its batch.
type Item struct {
	ID       uint64
	Model    string
	Options  string // canonical key of the other request options
	Inputs   int    // inputs it carries; at least 1
	Priority int    // 0 is most urgent
	Data     any    // carried untouched into the Batch
}

// Reason says why a batch was flushed.
type Reason int

const (
	ReasonSize     Reason = iota // reached batch_size inputs, or the next item did not fit
	ReasonTimeout                // batch_timeout passed since its first item
	ReasonPriority               // a high-priority item joined it
	ReasonAdaptive               // reached the size the arrival rate predicts
	ReasonConfig                 // a live config change made it due
	ReasonShutdown               // the batcher stopped or restarted
)

func (r Reason) String() string {
	switch r {
	case ReasonSize:
		return "size"
	case ReasonTimeout:
		return "timeout"
	case ReasonPriority:
		return "priority"
	case ReasonAdaptive:
		return "adaptive"
	case ReasonConfig:
		return "config"
	case ReasonShutdown:
		return "shutdown"
	}
	return "unknown"
}

// Batch is a flushed batch: items of one model and options.
type Batch struct {
	Model, Options string
	Items          []Item
	Inputs         int
	Reason         Reason
}

type group struct {
	key            string
	model, options string
	items          []Item
	inputs         int
	first          time.Time
}

// arrivals is what the queue learned about one model+options stream.
type arrivals struct {
	last    time.Time
	gap     time.Duration // smoothed time between items; 0 until measured
	perItem float64       // smoothed inputs per item
	known   bool          // gap has at least one sample
}

const (
	alpha = 0.3 // weight of a new sample in the smoothed gap
	// maxArrivalKeys bounds the arrival history; idle streams are dropped.
	maxArrivalKeys = 1024
)

// Queue is the batcher's core. Time is passed in; it starts no goroutines
// and is not safe for concurrent use.
type Queue struct {
	s        Settings
	groups   map[string]*group
	arrivals map[string]*arrivals
	pending  int

	batches, items, inputs, rejected uint64
}

// NewQueue returns an empty queue.
func NewQueue(s Settings) *Queue {
	return &Queue{s: s, groups: map[string]*group{}, arrivals: map[string]*arrivals{}}
}

func keyOf(model, options string) string { return model + "\x00" + options }

// Add queues it and returns the batches that became ready. A full queue
// refuses it with ErrQueueFull (counted as rejected).
func (q *Queue) Add(now time.Time, it Item) ([]Batch, error) {
	if q.pending >= q.s.MaxQueue {
		q.rejected++
		return nil, ErrQueueFull
	}
	it.Inputs = max(1, it.Inputs)
	key := keyOf(it.Model, it.Options)
	q.observe(now, key, it.Inputs)

	var out []Batch
	g := q.groups[key]
	if g != nil && g.inputs+it.Inputs > q.s.Size {
		out = append(out, q.flush(g, ReasonSize)...) // it does not fit: the batch is as full as it gets
		g = nil
	}
	if g == nil {
		g = &group{key: key, model: it.Model, options: it.Options, first: now}
		q.groups[key] = g
	}
	g.items = append(g.items, it)
	g.inputs += it.Inputs
	q.pending++

	switch target := q.target(key); {
	case q.s.PriorityEnabled && it.Priority == 0:
		out = append(out, q.flush(g, ReasonPriority)...)
	case g.inputs >= q.s.Size:
		out = append(out, q.flush(g, ReasonSize)...)
	case g.inputs >= target:
		out = append(out, q.flush(g, ReasonAdaptive)...)
	}
	return out, nil
}

// observe updates the arrival history of key with an item at now.
func (q *Queue) observe(now time.Time, key string, inputs int) {
	a := q.arrivals[key]
	if a == nil {
		if len(q.arrivals) >= maxArrivalKeys {
			q.forgetIdle(now)
		}
		q.arrivals[key] = &arrivals{last: now, perItem: float64(inputs)}
		return
	}
	// A long silence counts as sparse, not as a gap so long that the
	// smoothing would take many items to notice traffic is back.
	sample := min(max(0, now.Sub(a.last)), 10*q.s.Timeout)
	if a.known {
		a.gap = time.Duration(alpha*float64(sample) + (1-alpha)*float64(a.gap))
	} else {
		a.gap, a.known = sample, true
	}
	a.perItem = alpha*float64(inputs) + (1-alpha)*a.perItem
	a.last = now
}

// forgetIdle drops the arrival history of streams idle for 10 timeouts, or
// the oldest half when none are.
func (q *Queue) forgetIdle(now time.Time) {
	for k, a := range q.arrivals {
		if now.Sub(a.last) > 10*q.s.Timeout {
			delete(q.arrivals, k)
		}
	}
	if len(q.arrivals) < maxArrivalKeys {
		return
	}
	keys := make([]string, 0, len(q.arrivals))
	for k := range q.arrivals {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return q.arrivals[keys[i]].last.Before(q.arrivals[keys[j]].last) })
	for _, k := range keys[:len(keys)/2] {
		delete(q.arrivals, k)
	}
}

// Target returns the inputs at which the batch of model+options is flushed.
// Without adaptive sizing, or before a gap was measured, it is batch_size.
// With it: the inputs expected by the timeout — the first item plus
// timeout/gap more, times the usual inputs per item — within
// [1, batch_size]. Sparse arrivals thus flush at once (nothing more will
// come in time), dense ones grow the batch up to batch_size.
func (q *Queue) Target(model, options string) int { return q.target(keyOf(model, options)) }

func (q *Queue) target(key string) int {
	a := q.arrivals[key]
	if !q.s.Adaptive || a == nil || !a.known || a.gap <= 0 {
		return q.s.Size
	}
	items := 1 + float64(q.s.Timeout)/float64(a.gap)
	expected := math.Floor(items * a.perItem)
	if expected >= float64(q.s.Size) {
		return q.s.Size
	}
	return max(1, int(expected))
}

// flush removes g and returns it as batches of at most Size inputs (more
// than one only when a smaller batch_size left it overfull).
func (q *Queue) flush(g *group, reason Reason) []Batch {
	delete(q.groups, g.key)
	return q.count(pack(g, q.s.Size, reason))
}

// flushFull flushes the full batches of g and keeps a partial remainder
// pending, with its original start so that its timeout still holds.
func (q *Queue) flushFull(g *group, reason Reason) []Batch {
	out := pack(g, q.s.Size, reason)
	if tail := out[len(out)-1]; tail.Inputs < q.target(g.key) {
		out = out[:len(out)-1]
		g.items, g.inputs = tail.Items, tail.Inputs
	} else {
		delete(q.groups, g.key)
	}
	return q.count(out)
}

func (q *Queue) count(out []Batch) []Batch {
	for _, b := range out {
		q.pending -= len(b.Items)
		q.batches++
		q.items += uint64(len(b.Items))
		q.inputs += uint64(b.Inputs)
	}
	return out
}

// pack cuts g's items, in order, into batches of at most size inputs.
func pack(g *group, size int, reason Reason) []Batch {
	var out []Batch
	cur := Batch{Model: g.model, Options: g.options, Reason: reason}
	for _, it := range g.items {
		if len(cur.Items) > 0 && cur.Inputs+it.Inputs > size {
			out = append(out, cur)
			cur = Batch{Model: g.model, Options: g.options, Reason: reason}
		}
		cur.Items = append(cur.Items, it)
		cur.Inputs += it.Inputs
	}
	return append(out, cur)
}

// sorted returns the groups oldest first, for a deterministic flush order.
func (q *Queue) sorted() []*group {
	gs := make([]*group, 0, len(q.groups))
	for _, g := range q.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool {
		if !gs[i].first.Equal(gs[j].first) {
			return gs[i].first.Before(gs[j].first)
		}
		return gs[i].key < gs[j].key
	})
	return gs
}

// Due flushes the batches whose timeout has passed at now.
func (q *Queue) Due(now time.Time) []Batch {
	var out []Batch
	for _, g := range q.sorted() {
		if !now.Before(g.first.Add(q.s.Timeout)) {
			out = append(out, q.flush(g, ReasonTimeout)...)
		}
	}
	return out
}

// NextDeadline returns when the oldest batch times out.
func (q *Queue) NextDeadline() (time.Time, bool) {
	var next time.Time
	found := false
	for _, g := range q.groups {
		if d := g.first.Add(q.s.Timeout); !found || d.Before(next) {
			next, found = d, true
		}
	}
	return next, found
}

// Configure applies new settings at once: batches past the new timeout are
// flushed, and so are the full batches of groups that a smaller batch_size
// (or adaptive target) made full — an overfull group is cut into batches of
// the new size and a partial remainder keeps waiting. A smaller max_queue_size drops nothing;
// it refuses new items until the queue is below it.
func (q *Queue) Configure(now time.Time, s Settings) []Batch {
	q.s = s
	var out []Batch
	for _, g := range q.sorted() {
		switch {
		case !now.Before(g.first.Add(s.Timeout)):
			out = append(out, q.flush(g, ReasonTimeout)...)
		case g.inputs >= q.target(g.key):
			out = append(out, q.flushFull(g, ReasonConfig)...)
		}
	}
	return out
}

// FlushAll flushes every pending batch.
func (q *Queue) FlushAll(reason Reason) []Batch {
	var out []Batch
	for _, g := range q.sorted() {
		out = append(out, q.flush(g, reason)...)
	}
	return out
}

// Settings returns the settings in force.
func (q *Queue) Settings() Settings { return q.s }

// Pending returns the items waiting.
func (q *Queue) Pending() int { return q.pending }

// QueueStats are the queue's counters.
type QueueStats struct {
	Pending, Groups                  int
	Batches, Items, Inputs, Rejected uint64
}

// Stats returns the counters.
func (q *Queue) Stats() QueueStats {
	return QueueStats{
		Pending: q.pending, Groups: len(q.groups),
		Batches: q.batches, Items: q.items, Inputs: q.inputs, Rejected: q.rejected,
	}
}
