package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deer-runtime/deer/internal/leaktest"
)

// binDir holds deerd, deersim and deerload, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deerbench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "../../cmd/deerd", "../../cmd/deersim", "../../cmd/deerload")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(leaktest.Options(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

// tinyPlan runs every phase in seconds: the point is the wiring, not the
// numbers.
func tinyPlan() Plan {
	return Plan{
		WarmupRequests: 2, Rounds: 2, PerRound: 3,
		Rates: []float64{40}, StepWarmup: 200 * time.Millisecond, Step: 500 * time.Millisecond,
		SimLatency: 5 * time.Millisecond, GiveUpPct: 50,
		RetryRate: 40, RetryDuration: 500 * time.Millisecond,
		LimitedTasks: 30, LimitedRate: 40, FastFails: 5,
		CoalesceCalls: 5, CoalesceLatency: 200 * time.Millisecond,
		EmbedRequests: 20, EmbedRate: 100, EmbedLatency: 5 * time.Millisecond,
		ZipfKeys: 20, ZipfRequests: 60, ZipfRate: 200, ZipfS: 1, ZipfSeed: 1,
	}
}

// TestRunMeasuresDeerdAgainstDirectCalls runs the real deersim, deerd and
// deerload through all three phases (nginx and Portkey left out, as on a
// machine without them) and checks that each result is there and says
// what deerd did.
func TestRunMeasuresDeerdAgainstDirectCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes for several seconds")
	}
	opts := Options{Bin: binDir, Work: t.TempDir(), BasePort: 19400, Log: io.Discard}
	res, err := Run(context.Background(), opts, tinyPlan())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Targets, ","); got != "direct,deerd" {
		t.Fatalf("targets %s", got)
	}
	if res.PhaseA == nil || len(res.PhaseA.Diffs) != 1 || len(res.PhaseA.Diffs[0].RoundMediansUS) != 2 {
		t.Fatalf("phase A %+v", res.PhaseA)
	}
	if len(res.PhaseB) != 2 {
		t.Fatalf("phase B has %d steps, want 2", len(res.PhaseB))
	}
	for _, s := range res.PhaseB {
		if s.Result.SuccessPct != 100 || s.Result.Sent != 20 {
			t.Errorf("%s: %+v", s.Target, s.Result)
		}
		if s.Target == Deerd && (s.CPU <= 0 || s.PeakRSS <= 0 || math.IsNaN(s.OverheadP50US)) {
			t.Errorf("deerd step lacks its process numbers: cpu %v rss %d overhead %v", s.CPU, s.PeakRSS, s.OverheadP50US)
		}
		if s.Added(50, res.Plan.SimLatency) <= 0 {
			t.Errorf("%s: added p50 %v µs above a 5 ms upstream", s.Target, s.Added(50, res.Plan.SimLatency))
		}
	}
	features := map[string]Feature{}
	for _, f := range res.PhaseC {
		features[f.Name] = f
	}
	for name, want := range map[string]string{
		CacheHitFeature:                     "upstream calls during the hit rounds:",
		CoalesceFeature:                     "for 5 calls; answered 5 × 200; X-Deer-Cache:",
		BatchFeature:                        "20/20 succeeded;",
		ZipfFeature:                         "hit ratio",
		"Retry-After honoured":              "0 sooner than Retry-After",
		"Breaker fast-fail":                 "0 upstream calls",
		"Retry amplification under 10% 5xx": "upstream calls for 20 requests",
	} {
		if f, ok := features[name]; !ok || !strings.Contains(f.Deerd, want) {
			t.Errorf("%s: deerd %q, want it to say %q", name, f.Deerd, want)
		}
	}
	if !strings.Contains(features["Breaker fast-fail"].Deerd, "5 × 503") {
		t.Errorf("an open breaker answers 503 circuit_open: %s", features["Breaker fast-fail"].Deerd)
	}
	// The cache rows' wiring; whether deerd meets their goals is for make
	// bench to report, not for this test.
	if c := res.CacheHit; c == nil || c.Error != "" || c.Rounds == nil || len(c.Rounds.Diffs) != 1 || total(c.Answers) != 2+2*3 {
		t.Errorf("cache-hit rounds: %+v; want direct and deerd, 8 deerd answers tallied", c)
	}
	if b := res.Batching; b == nil || b.Deerd == nil || b.Deerd.Inputs != 20 || b.BatchSize != 10 || b.BatchTimeout != 1.5 {
		t.Errorf("batching: %+v; want 20 inputs upstream and the default batch settings read from deerd", b)
	} else if b.Deerd.OK != 20 {
		t.Errorf("batching: deerd answered %v (X-Deer-Cache %v)", b.Deerd.Statuses, b.Deerd.Answers)
	}
	if z := res.Zipf; z == nil || z.Statuses[200] != 60 || z.Capacity != 16000 || z.IdealHits != 60-z.Distinct {
		t.Errorf("zipf: %+v; want 60 answers and an ideal LRU of 16000 entries that misses only first sightings", z)
	}
	if len(res.Goals()) != 10 {
		t.Errorf("%d goals, want 10", len(res.Goals()))
	}
	if len(res.Commands) < 2 || !strings.Contains(res.DeerdConfig, "max_workers = 512") ||
		!strings.Contains(res.DeerdConfig, `batch = "openai-embeddings"`) {
		t.Errorf("the report needs the commands and the config: %q", res.Commands)
	}
}
