package bench

import "time"

// Plan is what a run measures and for how long.
type Plan struct {
	Quick bool `json:"quick"`

	// Phase A: sequential added latency, simulator latency 0.
	WarmupRequests int `json:"warmup_requests"`
	Rounds         int `json:"rounds"`
	PerRound       int `json:"per_round"`

	// Phase B: open-loop load at each rate, simulator latency SimLatency;
	// StepWarmup unrecorded, then Step recorded, per target and rate.
	Rates      []float64     `json:"rates"`
	StepWarmup time.Duration `json:"step_warmup"`
	Step       time.Duration `json:"step"`
	SimLatency time.Duration `json:"sim_latency"`
	// A target whose success falls below GiveUpPct at a rate is not run at
	// higher rates: past its limit it only slows the machine for the others.
	GiveUpPct float64 `json:"give_up_pct"`

	// Phase C: feature checks.
	RetryRate     float64       `json:"retry_rate"`     // req/s under 10% 5xx
	RetryDuration time.Duration `json:"retry_duration"` //
	LimitedTasks  int           `json:"limited_tasks"`  // distinct requests against a 20 req/s upstream
	LimitedRate   float64       `json:"limited_rate"`   // their rate
	FastFails     int           `json:"fast_fails"`     // sequential requests while the breaker is open
}

// FullPlan is `make bench`: the measurement issue 5 asks for.
func FullPlan() Plan {
	return Plan{
		WarmupRequests: 15, Rounds: 7, PerRound: 25,
		Rates:      []float64{500, 1000, 2000, 3000, 5000},
		StepWarmup: 3 * time.Second, Step: 15 * time.Second,
		SimLatency: 60 * time.Millisecond, GiveUpPct: 50,
		RetryRate: 200, RetryDuration: 5 * time.Second,
		LimitedTasks: 200, LimitedRate: 40,
		FastFails: 100,
	}
}

// QuickPlan is `make bench QUICK=1`: the same phases, shorter (2m25s on the
// 2-core machine of docs/benchmarks.md); its numbers are noisier.
func QuickPlan() Plan {
	p := FullPlan()
	p.Quick = true
	p.Rates = []float64{500, 1000, 2000}
	p.StepWarmup, p.Step = time.Second, 4*time.Second
	p.RetryDuration = 2 * time.Second
	p.LimitedTasks = 80
	p.FastFails = 50
	return p
}
