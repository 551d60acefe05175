package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/redistest"
)

// The GCRA grants at most burst tokens at once and then one per 1/rate;
// tokens a node gives back unused can be leased by another at once, but a
// refund never lends budget from the future.
func TestLeaseGrantsTheRateAndTakesRefunds(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Dial()
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	lease := func(node string, at time.Time, want, refund int) cluster.LeaseResult {
		t.Helper()
		r, err := cluster.Lease(ctx, c, node, cluster.LeaseRequest{
			Upstream: "sim", Now: at, Want: want, InitialRate: 100, Burst: 10, PilotTTL: time.Second, Refund: refund,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := lease("a", now, 50, 0); r.Granted != 10 || r.Rate != 100 || !r.Pilot {
		t.Fatalf("first lease %+v, want the burst of 10 at 100/s, as pilot", r)
	}
	if r := lease("b", now, 5, 0); r.Granted != 0 || r.Wait != 10*time.Millisecond || r.Pilot {
		t.Fatalf("lease with the burst spent %+v, want none for 10ms", r)
	}
	if r := lease("b", now.Add(50*time.Millisecond), 50, 0); r.Granted != 5 {
		t.Fatalf("after 50ms: %+v, want 5 tokens", r)
	}
	if r := lease("a", now.Add(50*time.Millisecond), 0, 4); r.Granted != 0 {
		t.Fatalf("a refund: %+v", r)
	}
	if r := lease("b", now.Add(50*time.Millisecond), 50, 0); r.Granted != 4 {
		t.Fatalf("after a's refund of 4: %+v, want those 4", r)
	}
	// More back than was ever ahead of now: the budget is the burst, no more.
	lease("a", now.Add(time.Second), 0, 1000)
	if r := lease("b", now.Add(time.Second), 50, 0); r.Granted != 10 {
		t.Fatalf("after an oversized refund: %+v, want the burst of 10", r)
	}
}
