package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// TargetRounds is one target's latencies in a Rounds run.
type TargetRounds struct {
	Method         string    `json:"method"`
	URL            string    `json:"url"`
	RoundMediansUS []float64 `json:"round_medians_us"`
	P50US          float64   `json:"p50_us"`
	P99US          float64   `json:"p99_us"`
}

// Diff compares one target with the first: its latency added over it.
type Diff struct {
	URL            string    `json:"url"`
	BaseURL        string    `json:"base_url"`
	RoundMediansUS []float64 `json:"round_medians_us"` // per round: median(target) − median(base)
	MedianUS       float64   `json:"median_us"`        // median of the round differences
	IQRUS          float64   `json:"iqr_us"`           // their interquartile range
}

// RoundsResult is what Rounds measured; see the package doc for the JSON.
type RoundsResult struct {
	Rounds   int            `json:"rounds"`
	PerRound int            `json:"per_round"`
	Warmup   int            `json:"warmup"`
	ElapsedS float64        `json:"elapsed_s"`
	Targets  []TargetRounds `json:"targets"`
	Diffs    []Diff         `json:"diffs"`
}

// Rounds calls targets in turn, one request at a time: warmup unrecorded
// iterations, then rounds × perRound recorded ones (an iteration calls every
// target once, in order). See the package doc for what it computes. A failed
// request (transport error or non-2xx answer) ends it with an error.
func Rounds(ctx context.Context, client *http.Client, targets []Target, rounds, perRound, warmup int, opts Options) (RoundsResult, error) {
	switch {
	case len(targets) == 0:
		return RoundsResult{}, errors.New("no target")
	case rounds < 1:
		return RoundsResult{}, fmt.Errorf("rounds must be >= 1, got %d", rounds)
	case perRound < 1:
		return RoundsResult{}, fmt.Errorf("per-round must be >= 1, got %d", perRound)
	case warmup < 0:
		return RoundsResult{}, fmt.Errorf("warmup must be >= 0, got %d", warmup)
	}
	for _, t := range targets {
		if err := t.Validate(); err != nil {
			return RoundsResult{}, err
		}
	}
	call := func(t Target) (time.Duration, error) {
		start := time.Now()
		code, err := t.do(ctx, client, opts.Timeout)
		d := time.Since(start)
		if opts.Progress != nil {
			opts.Progress()
		}
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", t.method(), t.URL, err)
		}
		if code < 200 || code > 299 {
			return 0, fmt.Errorf("%s %s: status %d", t.method(), t.URL, code)
		}
		return d, nil
	}

	start := time.Now()
	for range warmup {
		for _, t := range targets {
			if _, err := call(t); err != nil {
				return RoundsResult{}, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	all := make([][]float64, len(targets))     // every sample, per target
	medians := make([][]float64, len(targets)) // round medians, per target
	for range rounds {
		samples := make([][]float64, len(targets))
		for range perRound {
			for j, t := range targets {
				d, err := call(t)
				if err != nil {
					return RoundsResult{}, err
				}
				samples[j] = append(samples[j], float64(d.Nanoseconds())/1e3)
			}
		}
		for j := range targets {
			medians[j] = append(medians[j], Quantile(samples[j], 0.5))
			all[j] = append(all[j], samples[j]...)
		}
	}

	res := RoundsResult{Rounds: rounds, PerRound: perRound, Warmup: warmup, ElapsedS: time.Since(start).Seconds()}
	for j, t := range targets {
		res.Targets = append(res.Targets, TargetRounds{
			Method: t.method(), URL: t.URL, RoundMediansUS: medians[j],
			P50US: Quantile(all[j], 0.5), P99US: Quantile(all[j], 0.99),
		})
	}
	for j := 1; j < len(targets); j++ {
		diffs := make([]float64, rounds)
		for r := range diffs {
			diffs[r] = medians[j][r] - medians[0][r]
		}
		res.Diffs = append(res.Diffs, Diff{
			URL: targets[j].URL, BaseURL: targets[0].URL, RoundMediansUS: diffs,
			MedianUS: Quantile(diffs, 0.5),
			IQRUS:    Quantile(diffs, 0.75) - Quantile(diffs, 0.25),
		})
	}
	return res, nil
}

// Quantile is the nearest-rank quantile q (0..1) of xs, which it does not
// modify; 0 for no samples. It is the one BenchmarkAddedLatency uses.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}
