package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/deer-runtime/deer/internal/load"
)

func printRate(w io.Writer, r load.Result) {
	fmt.Fprintf(w, "target      %s %s\n", r.Method, r.URL)
	fmt.Fprintf(w, "schedule    %g/s for %gs: %d scheduled, %d sent, %d dropped by the generator (max in-flight %d)",
		r.Rate, r.DurationS, r.Scheduled, r.Sent, r.Dropped, r.MaxInFlight)
	if r.Interrupted {
		fmt.Fprint(w, ", interrupted")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "achieved    %.1f/s sent; max send lag %dµs; elapsed %.2fs\n", r.AchievedRate, r.MaxSendLagUS, r.ElapsedS)
	fmt.Fprintf(w, "success     %.2f%% (2xx of scheduled)\n", r.SuccessPct)
	fmt.Fprintf(w, "status      %s\n", counts(r.Status))
	fmt.Fprintf(w, "errors      %s\n", counts(r.Errors))
	l := r.Latency
	fmt.Fprintf(w, "latency µs  p50 %d  p90 %d  p99 %d  p99.9 %d  max %d  (%d answers, from scheduled send)\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Count)
}

func printRounds(w io.Writer, r load.RoundsResult) {
	fmt.Fprintf(w, "rounds      %d × %d per target, %d warm-up, %.2fs\n", r.Rounds, r.PerRound, r.Warmup, r.ElapsedS)
	for i, t := range r.Targets {
		fmt.Fprintf(w, "target %d    %s %s  p50 %.1fµs  p99 %.1fµs\n", i, t.Method, t.URL, t.P50US, t.P99US)
	}
	for _, d := range r.Diffs {
		fmt.Fprintf(w, "added       %s over %s: %.1fµs (median of round medians), IQR %.1fµs\n",
			d.URL, d.BaseURL, d.MedianUS, d.IQRUS)
	}
}

// counts prints a count map as "k: n, …" in key order, or "none".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
