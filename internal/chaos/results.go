package chaos

import (
	"time"

	"github.com/deer-runtime/deer/internal/bench"
)

// Results is everything a drill measured, and what the report needs to
// say how. It is also written as JSON next to the report.
type Results struct {
	Plan     Plan      `json:"plan"`
	Run      string    `json:"run"` // the run's nonce, in every prompt
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Interrupted: the drill was stopped before its end; its figures cover
	// part of the plan, and requests cut off count as lost.
	Interrupted bool          `json:"interrupted,omitempty"`
	Machine     bench.Machine `json:"machine"`
	// InProcess: deerd and deersim ran inside the process that drove
	// them (the test's short drill), so peak RSS is that process's.
	InProcess bool `json:"in_process,omitempty"`
	PID       int  `json:"pid,omitempty"`
	// ClearRefs: each phase's peak RSS counts from the phase's start (else
	// from the process's).
	ClearRefs bool `json:"clear_refs"`

	Sent    int `json:"sent"`    // requests the open loop made
	Dropped int `json:"dropped"` // requests due while its in-flight cap was reached: not sent

	Phases []PhaseResult `json:"phases"`
	Total  Counts        `json:"total"`
	// Duplicates lists every second answer found; Failures the first
	// requests that did not succeed (for the record: results.json only).
	Duplicates []Duplicate `json:"duplicates,omitempty"`
	Failures   []Failure   `json:"failures,omitempty"`
	// UpstreamCalls is what deersim counted over the whole drill.
	UpstreamCalls int64 `json:"upstream_calls"`
	// Restarts per actor and escalations over the drill (GET /faults).
	Restarts    map[string]int `json:"restarts"`
	Escalations int            `json:"escalations"`
	// HealthyAfterMS is the time from the removal of the last actor fault
	// to the first "healthy" from /health; -1 when it did not come before
	// the upstream phases.
	HealthyAfterMS float64 `json:"healthy_after_ms"`
	FinalHealth    string  `json:"final_health"`

	Samples  []Sample `json:"samples"`
	Timeline Timeline `json:"timeline"`

	DeerdConfig string   `json:"deerd_config"`
	Commands    []string `json:"commands"`
	Notes       []string `json:"notes,omitempty"`
}

// PhaseResult is one phase: its plan, what it injected, and what became of
// the requests sent during it.
type PhaseResult struct {
	Name   string  `json:"name"`
	Kind   string  `json:"kind"`
	StartS float64 `json:"start_s"` // planned, seconds from the schedule's start
	EndS   float64 `json:"end_s"`
	// When it actually began and ended, and removed its faults.
	ActualStartS float64        `json:"actual_start_s"`
	ActualEndS   float64        `json:"actual_end_s"`
	RemovedS     float64        `json:"removed_s,omitempty"`
	Faults       []FaultOutcome `json:"faults,omitempty"`
	Knobs        string         `json:"knobs,omitempty"`
	Error        string         `json:"error,omitempty"` // a deersim knob that could not be set

	Counts Counts `json:"counts"`
	// UpstreamCalls deersim counted during the phase.
	UpstreamCalls int64          `json:"upstream_calls"`
	Restarts      map[string]int `json:"restarts"`
	Escalations   int            `json:"escalations"`
	// HealthyAfterMS: from the removal of the phase's faults to the first
	// "healthy" (-1: not before the phase ended).
	HealthyAfterMS float64 `json:"healthy_after_ms"`
	PeakRSS        int64   `json:"peak_rss"` // bytes
}

// FaultOutcome is one injected fault: its id, how often it fired before it
// was removed (-1: not listed any more), or why it was refused.
type FaultOutcome struct {
	Spec  FaultSpec `json:"spec"`
	ID    FaultID   `json:"id,omitempty"`
	Fired int       `json:"fired"`
	Error string    `json:"error,omitempty"`
}

// Sample is one read of /health and /faults.
type Sample struct {
	T           float64 `json:"t"` // seconds from the schedule's start
	Health      string  `json:"health"`
	Restarting  int     `json:"restarting"`  // actors /health says are restarting
	Restarts    int     `json:"restarts"`    // total, since deerd started; -1: no answer
	Escalations int     `json:"escalations"` // -1: no answer
}

// Timeline is the requests over time in buckets of BucketS seconds: sent
// and lost by send time, succeeded and failed by answer time.
type Timeline struct {
	BucketS   float64 `json:"bucket_s"`
	Sent      []int   `json:"sent"`
	Succeeded []int   `json:"succeeded"`
	Failed    []int   `json:"failed"`
	Lost      []int   `json:"lost"`
}

// trim drops the empty buckets at the end.
func (t *Timeline) trim() {
	n := len(t.Sent)
	for n > 0 && t.Sent[n-1]+t.Succeeded[n-1]+t.Failed[n-1]+t.Lost[n-1] == 0 {
		n--
	}
	t.Sent, t.Succeeded, t.Failed, t.Lost = t.Sent[:n], t.Succeeded[:n], t.Failed[:n], t.Lost[:n]
}
