package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/redistest"
)

// Heartbeats make the membership: a node silent for AliveFor is gone, one
// that leaves is gone at once. Each beat carries the node's leased tokens;
// any node then shows every node's share of the budget and the cluster's
// totals.
func TestMembersHeartbeatsSharesAndTotals(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Dial()
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	var leasedA, leasedB atomic.Uint64
	a, b, gone := cluster.NewMembers("a"), cluster.NewMembers("b"), cluster.NewMembers("c")
	a.CountLeased(func() map[string]uint64 { return map[string]uint64{"sim": leasedA.Load()} })
	b.CountLeased(func() map[string]uint64 { return map[string]uint64{"sim": leasedB.Load()} })
	beat := func(m *cluster.Members, at time.Time) {
		t.Helper()
		if err := m.Beat(ctx, c, at); err != nil {
			t.Fatal(err)
		}
	}
	beat(gone, now)
	beat(a, now)
	beat(b, now)
	if b.Alive() != 3 {
		t.Fatalf("alive %d, want 3", b.Alive())
	}
	leasedA.Store(60)
	leasedB.Store(140)
	beat(a, now.Add(time.Second))
	beat(b, now.Add(time.Second))
	beat(a, now.Add(cluster.AliveFor+time.Second)) // c has been silent for more than AliveFor
	h := a.Health(now.Add(cluster.AliveFor + time.Second))
	if h.NodesAlive != 2 || len(h.Members) != 2 || h.Members[0].ID != "a" || h.Members[1].ID != "b" {
		t.Fatalf("members %+v, want a and b (c silent)", h.Members)
	}
	if r := h.Members[1].Report; r == nil || r.Leased["sim"] != 140 || r.Share["sim"] != 140 {
		t.Fatalf("b's report %+v, want 140 leased, 140 tokens/s", r)
	}
	if h.Totals.Leased["sim"] != 200 {
		t.Fatalf("totals %+v, want 200 leased", h.Totals)
	}
	if err := b.Leave(ctx, c); err != nil {
		t.Fatal(err)
	}
	beat(a, now.Add(cluster.AliveFor+2*time.Second))
	if h := a.Health(now); h.NodesAlive != 1 || h.Totals.Leased["sim"] != 60 {
		t.Fatalf("after b left: %d alive, totals %+v; want 1 and a's 60", h.NodesAlive, h.Totals)
	}
}
