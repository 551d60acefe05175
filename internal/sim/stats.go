package sim

import (
	"sync"
	"time"
)

// MaxInputCounts bounds Stats.EmbeddingInputCounts: the input counts of the
// most recent calls are kept.
const MaxInputCounts = 10000

// Stats is what GET /_stats reports. Requests and statuses count the API
// paths only (not /_control or /_stats); unknown paths count as "other".
type Stats struct {
	// Requests counts requests per path, whatever their outcome.
	Requests map[string]int64 `json:"requests"`
	// Statuses counts answers per HTTP status; hangs and resets have none.
	Statuses map[int]int64 `json:"statuses"`
	// Hangs and Resets count the injected faults of those kinds.
	Hangs  int64 `json:"hangs"`
	Resets int64 `json:"resets"`
	// InFlight is the number of API requests being handled now, and
	// PeakInFlight the most at once since the last reset.
	InFlight     int64 `json:"in_flight"`
	PeakInFlight int64 `json:"peak_in_flight"`
	// EmbeddingCalls and EmbeddingInputs count answered embedding calls and
	// their inputs; EmbeddingInputCounts lists the input count of each of
	// the last MaxInputCounts calls, oldest first.
	EmbeddingCalls       int64 `json:"embedding_calls"`
	EmbeddingInputs      int64 `json:"embedding_inputs"`
	EmbeddingInputCounts []int `json:"embedding_input_counts"`
	// RetryAfter follows 429 answers to their retries (see RetryAfterStats).
	RetryAfter RetryAfterStats `json:"retry_after"`
	// Since is when counting started (creation or the last reset).
	Since time.Time `json:"since"`
	// Now is when the counts were read: rates over two readings are
	// exact however long the readings took to travel.
	Now time.Time `json:"now"`
}

// counters holds the live statistics; its methods are safe for concurrent use.
type counters struct {
	mu          sync.Mutex
	requests    map[string]int64
	statuses    map[int]int64
	hangs       int64
	resets      int64
	inFlight    int64
	peak        int64
	embCalls    int64
	embInputs   int64
	inputCounts []int // ring buffer of up to MaxInputCounts entries
	next        int   // ring index of the next write once full
	since       time.Time
}

func newCounters(now time.Time) *counters {
	c := &counters{}
	c.reset(now)
	return c
}

func (c *counters) reset(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = map[string]int64{}
	c.statuses = map[int]int64{}
	c.hangs, c.resets, c.embCalls, c.embInputs = 0, 0, 0, 0
	c.peak = c.inFlight // requests still running stay counted as in flight
	c.inputCounts, c.next = nil, 0
	c.since = now
}

// begin counts a request to path as arrived and in flight; done ends it.
func (c *counters) begin(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests[path]++
	c.inFlight++
	c.peak = max(c.peak, c.inFlight)
}

func (c *counters) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
}

func (c *counters) status(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statuses[code]++
}

func (c *counters) hang() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hangs++
}

func (c *counters) connReset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resets++
}

func (c *counters) embedding(inputs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.embCalls++
	c.embInputs += int64(inputs)
	if len(c.inputCounts) < MaxInputCounts {
		c.inputCounts = append(c.inputCounts, inputs)
		return
	}
	c.inputCounts[c.next] = inputs
	c.next = (c.next + 1) % MaxInputCounts
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{
		Requests: make(map[string]int64, len(c.requests)),
		Statuses: make(map[int]int64, len(c.statuses)),
		Hangs:    c.hangs, Resets: c.resets,
		InFlight: c.inFlight, PeakInFlight: c.peak,
		EmbeddingCalls: c.embCalls, EmbeddingInputs: c.embInputs,
		EmbeddingInputCounts: make([]int, 0, len(c.inputCounts)),
		Since:                c.since,
	}
	for k, v := range c.requests {
		s.Requests[k] = v
	}
	for k, v := range c.statuses {
		s.Statuses[k] = v
	}
	s.EmbeddingInputCounts = append(s.EmbeddingInputCounts, c.inputCounts[c.next:]...)
	s.EmbeddingInputCounts = append(s.EmbeddingInputCounts, c.inputCounts[:c.next]...)
	return s
}
