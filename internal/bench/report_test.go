package bench

import (
	"encoding/json"
	"encoding/xml"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/load"
)

func TestSpliceReplacesOnlyTheGeneratedSection(t *testing.T) {
	doc := "# Benchmarks\n\nIntro.\n\n## In-process\n\nhand-written\n"
	once, err := Splice(doc, "## Side by side\n\nfirst")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(once, "Intro.\n\n"+BeginMarker) || !strings.Contains(once, EndMarker+"\n\n## In-process") {
		t.Fatalf("first splice should go before the first ## heading:\n%s", once)
	}
	twice, err := Splice(once, "## Side by side\n\nsecond")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(twice, "first") || !strings.Contains(twice, "second") || !strings.HasSuffix(twice, "hand-written\n") {
		t.Fatalf("second splice should replace the section and keep the rest:\n%s", twice)
	}
	if strings.Count(twice, BeginMarker) != 1 {
		t.Fatalf("markers duplicated:\n%s", twice)
	}
	if _, err := Splice("x\n"+BeginMarker+"\n", "s"); err == nil {
		t.Fatal("a lone marker must be an error, not a guess")
	}
}

const promText = `# HELP deer_overhead_seconds x
deer_overhead_seconds_bucket{le="1e-05"} 10
deer_overhead_seconds_bucket{le="2e-05"} 30
deer_overhead_seconds_bucket{le="5e-05"} 40
deer_overhead_seconds_bucket{le="+Inf"} 40
deer_overhead_seconds_sum 0.0008
deer_overhead_seconds_count 40
deer_other_bucket{le="1"} 99
`

func TestHistogramQuantileInterpolatesInsideTheBucket(t *testing.T) {
	b := ParseHistogram(promText, "deer_overhead_seconds")
	if b.Count() != 40 || len(b) != 4 {
		t.Fatalf("parsed %v", b)
	}
	// Rank 20 of 40 lies halfway through the (10 µs, 20 µs] bucket (10..30).
	if got := b.Quantile(0.5); math.Abs(got-15e-6) > 1e-12 {
		t.Errorf("p50 = %g, want 15e-6", got)
	}
	before := ParseHistogram(strings.ReplaceAll(promText, "} 40", "} 30"), "deer_overhead_seconds")
	d := b.Sub(before) // 10 observations, all in (20 µs, 50 µs]
	if d.Count() != 10 || math.Abs(d.Quantile(0.5)-35e-6) > 1e-12 {
		t.Errorf("delta %v p50 %g, want 10 observations and 35e-6", d, d.Quantile(0.5))
	}
	if !math.IsNaN(Buckets{}.Quantile(0.5)) {
		t.Error("an empty histogram has no quantile")
	}
}

func TestUSFormatting(t *testing.T) {
	for in, want := range map[float64]string{812: "812 µs", 8120: "8.12 ms", 250_000: "250 ms", math.NaN(): "—"} {
		if got := us(in); got != want {
			t.Errorf("us(%v) = %q, want %q", in, got, want)
		}
	}
}

// results builds a run's results from per-target added latencies.
func results(phaseA map[string]float64, steps []Step) *Results {
	res := newResults(FullPlan())
	res.Targets = []string{Direct, Nginx, Deerd, Portkey}
	res.PhaseA = &load.RoundsResult{}
	for _, name := range res.Targets {
		res.PhaseA.Targets = append(res.PhaseA.Targets, load.TargetRounds{URL: name})
		if name != Direct {
			res.PhaseA.Diffs = append(res.PhaseA.Diffs, load.Diff{URL: name, MedianUS: phaseA[name]})
		}
	}
	res.PhaseB = steps
	return res
}

func step(target string, rate, success float64, p99US int64, cpu time.Duration, rss int64) Step {
	return Step{Target: target, Rate: rate, CPU: cpu, PeakRSS: rss, OverheadP50US: 12, OverheadP99US: 40,
		Result: load.Result{Sent: 1000, SuccessPct: success, Status: map[string]int{"200": 1000},
			Latency: load.Latency{Count: 1000, P50: 60_100, P99: 60_000 + p99US, P999: 60_000 + 2*p99US}}}
}

func TestGoalsJudgeAgainstNginxInTheSameRun(t *testing.T) {
	var steps []Step
	for _, rate := range FullPlan().Rates {
		steps = append(steps,
			step(Nginx, rate, 100, 1000, 100*time.Millisecond, 20e6),
			step(Deerd, rate, 100, 1900, 190*time.Millisecond, 60e6))
	}
	res := results(map[string]float64{Nginx: 150, Deerd: 200, Portkey: 2000}, steps)
	withCacheResults(res)
	for _, g := range res.Goals() {
		if !strings.HasPrefix(g.Met, "met") {
			t.Errorf("%s: %s (%s), want met", g.Goal, g.Met, g.Measured)
		}
	}
	if h := res.highest(Deerd); h != 4000 {
		t.Errorf("highest deerd rate = %g, want 4000", h)
	}

	// deerd slower than 2 × nginx's p99 at 3000 and over 100 MB there, and
	// 2.5 × nginx's CPU at 2000: missed, and the highest passing rate stops
	// below 3000.
	steps[5] = step(Deerd, 2000, 100, 1900, 250*time.Millisecond, 60e6)
	steps[7] = step(Deerd, 3000, 100, 2100, 190*time.Millisecond, 120e6)
	res = results(map[string]float64{Nginx: 150, Deerd: 240, Portkey: 1000}, steps)
	got := res.Goals()
	for i, want := range []string{
		"missed", // Phase A: 240 > 1.5 × 150
		"missed", // Phase A: 1000 < 8 × 240
		"missed", // 3000 req/s: p99
		"missed", // CPU at 2000
		"missed", // 120 MB at 3000
		"met",    // overhead 12 µs
	} {
		if got[i].Met != want {
			t.Errorf("%s: %q (%s), want %q", got[i].Goal, got[i].Met, got[i].Measured, want)
		}
	}
	if !strings.Contains(got[2].Measured, "p99 added 2.10 ms vs nginx 1.00 ms") || !strings.Contains(got[3].Measured, "2000 req/s: 0.250 vs nginx 0.100") {
		t.Errorf("the misses should say where: %s; %s", got[2].Measured, got[3].Measured)
	}
	if h := res.highest(Deerd); h != 2000 {
		t.Errorf("highest deerd rate = %g, want 2000", h)
	}
}

func TestMarkdownAndPlotsCarryTheRun(t *testing.T) {
	steps := []Step{step(Nginx, 500, 100, 1000, time.Second, 20e6), step(Deerd, 500, 99.5, 1500, time.Second, 50e6),
		{Target: Portkey, Rate: 1000, Skipped: "not run: below 50% success at 500 req/s"}}
	steps[1].Result.Status = map[string]int{"200": 995, "503": 5}
	res := results(map[string]float64{Nginx: 150, Deerd: 200, Portkey: 2000}, steps)
	res.DeerdConfig = "[server]\n"
	res.Commands = []string{"deerload rate --url X"}
	md := res.Markdown([]string{"bench/added-p50.svg"})
	for _, want := range []string{"| deerd | 200 µs |", "1.33 ×", "99.50% (5 × 503)", "not run: below 50% success",
		"![bench/added-p50.svg](bench/added-p50.svg)", "deerload rate --url X", "```toml\n[server]\n```"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	plots := res.AddedPlots()
	if len(plots) != 2 {
		t.Fatalf("plots %v", plots)
	}
	for name, svg := range plots {
		if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
			t.Errorf("%s is not well-formed XML: %v", name, err)
		}
		if !strings.Contains(svg, "<polyline") && !strings.Contains(svg, "<circle") {
			t.Errorf("%s draws no data", name)
		}
	}
}

func TestCommandsKeepOneOfEachShape(t *testing.T) {
	res := newResults(QuickPlan())
	res.command([]string{"taskset", "-c", "1", "/x/bin/deerload", "rate", "--url", "http://a", "--rate", "500", "--json"})
	res.command([]string{"taskset", "-c", "1", "/x/bin/deerload", "rate", "--url", "http://b", "--rate", "1000", "--json"})
	res.command([]string{"taskset", "-c", "1", "/x/bin/deerload", "rounds", "--url", "http://a", "--json"})
	if len(res.Commands) != 2 || !strings.HasPrefix(res.Commands[0], "taskset -c 1 deerload rate --url 'http://a'") {
		t.Errorf("commands %q", res.Commands)
	}
}

func TestRatesWhereDirectCallsFailAreNotJudged(t *testing.T) {
	steps := []Step{
		step(Direct, 1000, 100, 500, 0, 0), step(Nginx, 1000, 100, 1000, 100*time.Millisecond, 20e6),
		step(Deerd, 1000, 100, 1500, 150*time.Millisecond, 60e6),
		step(Direct, 3000, 60, 900_000, 0, 0), step(Nginx, 3000, 90, 800_000, 100*time.Millisecond, 20e6),
		step(Deerd, 3000, 99, 900_000, 900*time.Millisecond, 60e6),
	}
	res := results(map[string]float64{Nginx: 150, Deerd: 200, Portkey: 2000}, steps)
	g := res.Goals()[3]
	if g.Met != "met" || !strings.Contains(g.Measured, "not judged at 3000 req/s") {
		t.Errorf("CPU goal: %s (%s); want met, with 3000 req/s left unjudged", g.Met, g.Measured)
	}
	if g := res.Goals()[2]; g.Met != "not measured" {
		t.Errorf("3,000 req/s goal: %s (%s); want not measured", g.Met, g.Measured)
	}
	md := res.Markdown(nil)
	if !strings.Contains(md, "At 3000 req/s direct calls failed too") {
		t.Errorf("the table should warn about 3000 req/s:\n%s", md)
	}
	if strings.Index(md, "failed too") > strings.Index(md, "| rate | target |") {
		t.Error("the warning must come before the table, not inside it")
	}

	// nginx itself failing at a rate (direct calls fine) leaves it unjudged
	// too, and stops the highest passing rate below it.
	steps[3] = step(Direct, 3000, 100, 900, 0, 0)
	res = results(map[string]float64{Nginx: 150, Deerd: 200, Portkey: 2000}, steps)
	if g := res.Goals()[3]; !strings.Contains(g.Measured, "not judged at 3000 req/s") {
		t.Errorf("nginx below 99.9%% at 3000: %s", g.Measured)
	}
	if h := res.highest(Deerd); h != 1000 {
		t.Errorf("highest judged deerd rate %g, want 1000", h)
	}
}

func TestStepJSONWritesMissingOverheadAsNull(t *testing.T) {
	s := step(Deerd, 500, 100, 1000, time.Second, 1)
	s.OverheadP99US = math.NaN()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"overhead_p50_us":12`) || !strings.Contains(string(b), `"overhead_p99_us":null`) ||
		!strings.Contains(string(b), `"target":"deerd"`) {
		t.Errorf("step JSON %s", b)
	}
}

func TestPortkeyRoundsJoinTheTableInTargetOrder(t *testing.T) {
	shared := load.RoundsResult{
		Targets: []load.TargetRounds{{URL: "direct"}, {URL: "nginx"}, {URL: "deerd"}},
		Diffs:   []load.Diff{{URL: "nginx", MedianUS: 100}, {URL: "deerd", MedianUS: 250}},
	}
	appendAlone(&shared, load.RoundsResult{
		Targets: []load.TargetRounds{{URL: "direct"}, {URL: "portkey", P50US: 6000}},
		Diffs:   []load.Diff{{URL: "portkey", MedianUS: 5000}},
	})
	res := newResults(FullPlan())
	res.Targets = []string{Direct, Nginx, Deerd, Portkey}
	res.PhaseA, res.PhaseAAlone = &shared, []string{Portkey}
	if m, _, ok := res.addedA(Portkey); !ok || m != 5000 {
		t.Errorf("portkey added %v %v, want 5000", m, ok)
	}
	if m, _, _ := res.addedA(Deerd); m != 250 {
		t.Errorf("deerd added %v, want 250", m)
	}
	md := res.Markdown(nil)
	if !strings.Contains(md, "| portkey | 5.00 ms |") || !strings.Contains(md, "portkey took turns with direct calls in rounds of its own") {
		t.Errorf("markdown:\n%s", md)
	}
}
