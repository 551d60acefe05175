package router

import (
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/messages"
)

const (
	// ResultTTL is how long finished async and idempotent results are kept.
	ResultTTL = 10 * time.Minute
	// agingInterval is how long a queued task waits before it counts as one
	// level more urgent: no task starves longer than about levels × this.
	agingInterval = 2 * time.Second
	// maxCrashes is how often a task may lose its worker before it fails
	// with internal_error instead of being dispatched again.
	maxCrashes = 3
	// watchdogGrace is how long past its timeout the router waits for a
	// worker's report before it answers timeout itself and replaces the
	// worker; also how long a cancelled running task's worker has to stop.
	watchdogGrace = time.Second
)

// finished is a result kept for GET /v1/tasks/{id} or an Idempotency-Key.
type finished struct {
	result  *messages.TaskResult
	expires time.Time
	owner   string // the task's Tenant: only its owner may read it
}

// watchdogFired is the router's timer message: some entry may be past its
// due time.
type watchdogFired struct {
	due time.Time
}

// drainDeadline is the router's timer message for the end of a drain.
type drainDeadline struct{}

// taskMetrics are the task path's Prometheus series, and the recent
// latencies /metrics reports. Made once in Props, like the book, they
// survive router restarts; only the router's goroutine touches them.
type taskMetrics struct {
	set      *metrics.Set
	outcomes map[outcomeKey]*metrics.Counter // deer_tasks_total, looked up once per label pair
	inFlight *metrics.Gauge
	duration *metrics.PrometheusHistogram
	overhead *metrics.PrometheusHistogram
	recent   latencies
}

// Histogram buckets, in seconds: task durations span milliseconds to
// minutes; deer's own overhead should stay in microseconds.
var (
	durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	overheadBuckets = []float64{5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 0.05, 0.1, 1}
)

func newTaskMetrics(set *metrics.Set) *taskMetrics {
	return &taskMetrics{
		set:      set,
		outcomes: map[outcomeKey]*metrics.Counter{},
		inFlight: set.GetOrCreateGauge("deer_tasks_in_flight", nil),
		duration: set.GetOrCreatePrometheusHistogramExt("deer_task_duration_seconds", durationBuckets),
		overhead: set.GetOrCreatePrometheusHistogramExt("deer_overhead_seconds", overheadBuckets),
	}
}

type outcomeKey struct{ upstream, outcome string }

// finished counts a task's outcome. The counter is found by its label pair
// in a map owned by the router, so a task costs no name formatting.
func (m *taskMetrics) finished(upstream, outcome string) {
	k := outcomeKey{upstream, outcome}
	c := m.outcomes[k]
	if c == nil {
		c = m.set.GetOrCreateCounter("deer_tasks_total" + metricname.Labels("upstream", upstream, "outcome", outcome))
		m.outcomes[k] = c
	}
	c.Inc()
}

// byOutcome sums deer_tasks_total over its upstream label.
func (m *taskMetrics) byOutcome() map[string]uint64 {
	out := make(map[string]uint64, len(m.outcomes))
	for k, c := range m.outcomes {
		out[k.outcome] += c.Get()
	}
	return out
}

// TaskTimeout is the time a task may run: its own, else worker_timeout.
func TaskTimeout(t *messages.Task, cfg *conf.Config) time.Duration {
	limit := conf.Seconds(cfg.ParallelExecution.WorkerTimeout)
	if t.Timeout > 0 && t.Timeout < limit {
		return t.Timeout
	}
	return limit
}

// copyResult gives each receiver of a shared result its own struct.
func copyResult(r *messages.TaskResult) *messages.TaskResult {
	c := *r
	return &c
}
