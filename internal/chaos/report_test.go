package chaos

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/bench"
)

// sampleResults is a small drill's results, made by hand: a baseline, one
// panic phase, an upstream phase and a cool-down.
func sampleResults(lost int) *Results {
	p := QuickPlan()
	l := NewLedger(t0)
	for i := range 40 {
		phase := i / 10
		id := l.Send(p.Mix.KindOf(i), phase, at(i*100))
		switch {
		case phase == 2 && i%3 == 0:
			l.Answer(id, Answer{At: at(i*100 + 50), Failure: "502 upstream_error"})
		case i < lost:
		default:
			l.Answer(id, Answer{At: at(i*100 + 30), OK: true, Cache: "miss"})
		}
	}
	perPhase, total := l.Tally(4)
	res := &Results{
		Plan: p, Run: "abc", Started: t0, Finished: t0.Add(9 * time.Second), ClearRefs: true,
		Machine: bench.Machine{CPU: "Test CPU", Cores: 2, Kernel: "6.1", Versions: map[string]string{"go": "go1.26", "deerd": "abc123"}},
		Sent:    40, Total: total, UpstreamCalls: 44,
		Restarts: map[string]int{"cache/l1": 3, "worker/2": 1, "worker/5": 2}, Escalations: 1,
		HealthyAfterMS: 240, FinalHealth: Healthy,
		Phases: []PhaseResult{
			{Name: "baseline", Kind: PhaseBaseline, ActualStartS: 0, ActualEndS: 1, Counts: perPhase[0], UpstreamCalls: 10, PeakRSS: 40e6, HealthyAfterMS: -1},
			{Name: "panic cache/l1", Kind: PhasePanic, ActualStartS: 1, ActualEndS: 2, RemovedS: 1.6, Counts: perPhase[1], UpstreamCalls: 10,
				Faults:   []FaultOutcome{{Spec: FaultSpec{Actor: "cache/l1", Kind: "panic", Count: 3}, ID: "7", Fired: 3}},
				Restarts: map[string]int{"cache/l1": 3, "worker/2": 1, "worker/5": 2}, Escalations: 1, HealthyAfterMS: 240, PeakRSS: 45e6},
			{Name: "upstream 5xx burst", Kind: PhaseUpstream, ActualStartS: 2, ActualEndS: 3, Knobs: `{"error_rate": 0.3}`, Counts: perPhase[2], UpstreamCalls: 14, PeakRSS: 46e6, HealthyAfterMS: -1},
			{Name: "cool-down", Kind: PhaseCooldown, ActualStartS: 3, ActualEndS: 4, Counts: perPhase[3], UpstreamCalls: 10, PeakRSS: 44e6, HealthyAfterMS: -1},
		},
		Samples: []Sample{
			{T: 0, Health: Healthy, Restarts: 0, Escalations: 0}, {T: 1.2, Health: Degraded, Restarting: 1, Restarts: 2, Escalations: 0},
			{T: 1.5, Health: NoAnswer, Restarts: -1, Escalations: -1}, {T: 2, Health: Healthy, Restarts: 6, Escalations: 1},
		},
		DeerdConfig: "[server]\naddr = \"127.0.0.1:9503\"\n",
		Commands:    []string{"make chaos QUICK=1"},
	}
	n := 5
	res.Timeline.BucketS = 1
	res.Timeline.Sent, res.Timeline.Succeeded, res.Timeline.Failed, res.Timeline.Lost = l.Series(time.Second, n)
	res.Timeline.trim()
	return res
}

func TestMarkdownReportsPhasesTotalsAndGoals(t *testing.T) {
	md := sampleResults(0).Markdown("chaos/timeline.svg")
	for _, want := range []string{
		"## The drill: `make chaos`", "Machine: Test CPU, 2 cores, Linux 6.1", "deerd `abc123`",
		"| 40 | 40 | 37 (92.50%) | 3 | 0 | 0 | 1.10 | 0 | 6 | 1 | 240 ms |",
		"Failed, by status and code: 3 × 502 upstream_error.",
		"| panic cache/l1 | 1.0–2.0 | panic ×3, fired 3 | 10 | 10 | — | 0 | 0 | 1.00 | cache/l1 3, worker/* 3 | 1 | 240 ms | 45.0 MB |",
		"| upstream 5xx burst | 2.0–3.0 | deersim {\"error_rate\": 0.3} | 10 | 7 | 3 × 502 upstream_error |",
		"![chaos/timeline.svg](chaos/timeline.svg)",
		"Restarts per actor over the drill: cache/l1 3, worker/2 1, worker/5 2.",
		"| 0 lost (sent, never answered) | 0 | met |",
		"| ≥ 99% of requests succeed outside the upstream-fault phases | 100.00% (20 of 20) | met |",
		"| /health healthy ≤ 1 s after the last actor fault | 240 ms after its removal | met |",
		"baseline 40.0 MB, cool-down 44.0 MB (1.10 ×), highest 46.0 MB | met |",
		"```toml\n[server]\naddr = \"127.0.0.1:9503\"\n```",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestGoalsMissWhenRequestsAreLost(t *testing.T) {
	res := sampleResults(2)
	if !res.Failed() {
		t.Error("a drill that lost requests must fail")
	}
	goals := res.Goals()
	if goals[0].Met != "missed" || goals[0].Measured != "2 (2 × unanswered)" {
		t.Errorf("lost goal: %+v", goals[0])
	}
	if goals[2].Met != "missed" || !strings.Contains(goals[2].Measured, "90.00% (18 of 20)") {
		t.Errorf("success goal: %+v", goals[2])
	}
	if !strings.Contains(res.Summary(), "lost 2, duplicates 0") {
		t.Errorf("summary: %s", res.Summary())
	}
	ok := sampleResults(0)
	if ok.Failed() {
		t.Error("nothing lost, nothing duplicated: the drill passes")
	}
	ok.Interrupted = true
	if !ok.Failed() {
		t.Error("an interrupted drill cannot pass")
	}
}

func TestTimelineIsOneSVGOfThreePlots(t *testing.T) {
	svg := sampleResults(1).TimelineSVG()
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not XML: %v\n%s", err, svg)
	}
	for _, want := range []string{
		`viewBox="0 0 960 840"`, ">panic cache/l1</text>", ">succeeded</text>", ">restarts</text>",
		">healthy</text>", ">no answer</text>", `<g transform="translate(0 380)">`, `<g transform="translate(0 640)">`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<polyline"); n < 7 {
		t.Errorf("%d lines drawn, want the 4 rates, 3 supervision series and health", n)
	}
	if strings.Contains(svg, "<circle") {
		t.Error("dense series are drawn without dots")
	}
}

// Results round-trip through results.json, which deerchaos --from renders.
func TestResultsRoundTripJSON(t *testing.T) {
	res := sampleResults(1)
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Markdown("x.svg") != res.Markdown("x.svg") {
		t.Error("the report of the saved results differs from the original's")
	}
}

func TestSpliceUsesTheChaosMarkers(t *testing.T) {
	doc, err := Splice("# Fault drill\n\nHand-written.\n\n## Later\n", "## The drill\n\nnumbers")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc, "Hand-written.\n\n"+BeginMarker+"\n## The drill\n\nnumbers\n"+EndMarker+"\n\n## Later") {
		t.Fatalf("spliced:\n%s", doc)
	}
	again, err := Splice(doc, "new")
	if err != nil || strings.Contains(again, "numbers") || strings.Count(again, BeginMarker) != 1 {
		t.Fatalf("re-spliced (%v):\n%s", err, again)
	}
}
