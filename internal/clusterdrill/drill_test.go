package clusterdrill_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/clusterdrill"
	"github.com/deer-runtime/deer/internal/redistest"
)

// binDir holds deerd and deersim, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deercluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "../../cmd/deerd", "../../cmd/deersim")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The issue's drill, shortened and at half its scale, on real processes:
// three deerd nodes sharing a real redis-server in front of deersim at
// C = 100 req/s, offered 150 req/s each; first a breaker opened on one node and closed by one
// probe; then a node SIGKILLed; Redis killed and restarted. The bounds
// on rates are looser than the issue's goals (which `make cluster-demo`
// reports): the windows are a few seconds, where deersim's one-second
// bucket alone moves the accepted rate by C/W, and `make test` runs other
// packages on the same two cores. What must hold exactly holds exactly:
// no request to a surviving node goes unanswered, and the cluster never
// goes unlimited.
func TestDrill(t *testing.T) {
	bin := redistest.Binary()
	if bin == "" {
		if os.Getenv("DEER_REQUIRE_REDIS") == "1" {
			t.Fatal("no redis-server on PATH and DEER_REQUIRE_REDIS=1: run scripts/test-deps.sh")
		}
		t.Skip("no redis-server on PATH (scripts/test-deps.sh installs it)")
	}
	cfg := clusterdrill.Issue(binDir, bin, t.TempDir())
	cfg.Warm, cfg.Measure, cfg.Outage = 5*time.Second, 6*time.Second, 4*time.Second
	// Half the issue's scale (C = 100, 150 req/s per node: the same 3×
	// over), so that the drill does not starve the packages make test runs
	// beside it on two cores.
	cfg.Capacity, cfg.Rate = 100, 150
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := clusterdrill.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res.Markdown())
	c := cfg.Capacity
	share := res.Throttled / max(res.Accepted+res.Throttled, 1)
	switch {
	case res.Accepted < 0.75*c || res.Accepted > 1.35*c:
		t.Errorf("3 nodes got %.1f req/s accepted upstream, want about C = %.0f (3 × 150 offered: unshared limits would send far more)", res.Accepted, c)
	case share > 0.1:
		t.Errorf("%.1f%% of upstream calls were 429s", 100*share)
	}
	if res.BreakerSeen < 0 || res.BreakerSeen > time.Second {
		t.Errorf("node 1's breaker opening showed on nodes 2 and 3 after %v, want within 1 s", res.BreakerSeen)
	}
	if res.Probes != 1 {
		t.Errorf("%d of 3 calls sent at once into half_open reached the upstream, want 1 (one probe cluster-wide)", res.Probes)
	}
	if res.BreakerClosed < 0 || res.BreakerClosed > 2*time.Second {
		t.Errorf("the probe's success closed the breaker everywhere after %v, want within 2 s", res.BreakerClosed)
	}
	if res.Lost != 0 {
		t.Errorf("%d requests to surviving nodes got no answer: %q", res.Lost, res.LostErrors)
	}
	if res.NoticedKill < 0 || res.NoticedKill > 5*time.Second {
		t.Errorf("the SIGKILLed node was seen gone after %v, want within 5 s", res.NoticedKill)
	}
	if res.AfterKill < 0.7*c || res.AfterKill > 1.35*c {
		t.Errorf("two nodes got %.1f req/s upstream after the kill, want about C = %.0f", res.AfterKill, c)
	}
	if res.NoticedOutage < 0 || res.NoticedOutage > 3*time.Second {
		t.Errorf("Redis down showed in /health after %v, want within 3 s", res.NoticedOutage)
	}
	if res.DuringOutage <= 0 || res.DuringOutage > 1.35*c {
		t.Errorf("with Redis down the nodes sent %.1f req/s upstream, want local limits (rate / nodes alive), > 0", res.DuringOutage)
	}
	if res.Rejoin < 0 || res.Rejoin > 5*time.Second {
		t.Errorf("the nodes rejoined %v after Redis came back, want within 5 s", res.Rejoin)
	}
}
