package limiter

import (
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/redistest"
	"github.com/deer-runtime/deer/messages"
)

// node is one limiter of a cluster: its own actor system, the shared Redis
// and the test's fake clock.
func startNode(t *testing.T, cfg *conf.Config, clk *clock.Fake, srv *redistest.Server, id string, alive int) *fixture {
	t.Helper()
	rds := srv.Dial()
	f := &fixture{
		name: "limiter/sim", system: actortest.NewSystem(t), live: conf.NewLive(cfg),
		clock: clk, set: metrics.NewSet(), logs: &actortest.SyncBuffer{},
	}
	f.pid = actortest.Spawn(t, f.system, actortest.Panicky(Props(Deps{
		Name: f.name, Upstream: "sim", Live: f.live, Clock: clk, Log: zerolog.New(f.logs), Metrics: f.set,
		Shared: &Shared{Redis: rds, Node: cluster.Fixed{ID: id, N: alive}},
	})))
	f.probe, f.ch = actortest.Probe(t, f.system)
	return f
}

// settle lets every node take what the clock's last step made due: its
// mailbox is processed (a tick starts a lease) and no lease call is out.
func settle(t *testing.T, nodes []*fixture) {
	t.Helper()
	for _, n := range nodes {
		actortest.Eventually(t, "the lease call is answered", func() bool {
			c := n.stats(t).Cluster
			return c != nil && !c.Leasing
		})
	}
}

func totalGranted(t *testing.T, nodes []*fixture) (total uint64, each []uint64) {
	for _, n := range nodes {
		g := n.stats(t).Granted
		total += g
		each = append(each, g)
	}
	return total, each
}

// fixedRate: 100/s that does not adapt, burst 10.
func fixedRate() *conf.Config {
	return testConfig(func(c *conf.Config) {
		c.RateLimit = conf.RateLimit{InitialRate: 100, MinRate: 100, MaxRate: 100, AdaptationFactor: 2, WindowSize: 60, BurstAllowance: 10}
	})
}

func TestClusterNodesShareOneBudget(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	var nodes []*fixture
	for _, id := range []string{"a", "b", "c"} {
		nodes = append(nodes, startNode(t, fixedRate(), clk, srv, id, 3))
	}
	// Every node wants far more than the budget: 300 callers each.
	for _, n := range nodes {
		for id := uint64(1); id <= 300; id++ {
			n.acquire(id, 1)
		}
	}
	settle(t, nodes)
	start, _ := totalGranted(t, nodes)
	const step, steps = 5 * time.Millisecond, 400 // 2 s at 100/s: 200 tokens
	for range steps {
		clk.Advance(step)
		settle(t, nodes)
	}
	total, each := totalGranted(t, nodes)
	got := total - start
	// GCRA never grants more than the rate over the time plus its burst
	// tolerance; the nodes' pacing (leaseGap) and the lease's lapse may
	// leave a little unused.
	if got > 200+10 || got < 190 {
		t.Fatalf("the three nodes were granted %d tokens in 2 s of a 100/s budget (each %v, %d before), want 190-210", got, each, start)
	}
	for i, g := range each {
		if g < 20 { // first come, first served: shares differ, but nobody is shut out
			t.Errorf("node %d got %d tokens of %d: starved (each %v)", i, g, total, each)
		}
	}
	if s := nodes[0].stats(t).Cluster; s.SharedRate != 100 || s.RedisCalls == 0 {
		t.Errorf("cluster stats %+v", s)
	}
}

func TestClusterNodeFallsBackToItsShareWithoutRedis(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	n := startNode(t, fixedRate(), clk, srv, "a", 4)
	settle(t, []*fixture{n})
	srv.Kill()
	for id := uint64(1); id <= 100; id++ {
		n.acquire(id, 1)
	}
	settle(t, []*fixture{n})
	actortest.Eventually(t, "the limiter reports the fallback", func() bool {
		return n.stats(t).Cluster.Fallback
	})
	st := n.stats(t)
	// 100/s shared by 4 nodes: 25/s here, clamped to the configured
	// bounds (min_rate 100 here), never unlimited.
	if st.Cluster.LocalRate != 100 || st.CurrentRate != 100 {
		t.Errorf("fallback rate %v (bucket %v), want the shared 100/4 clamped to min_rate 100", st.Cluster.LocalRate, st.CurrentRate)
	}
	s := n.status(t)
	if s.State != messages.StateDegraded || !strings.Contains(s.Detail, "redis unreachable") || !strings.Contains(s.Detail, "4 nodes alive") {
		t.Fatalf("status %+v", s)
	}
	granted := st.Granted
	clk.Advance(500 * time.Millisecond)
	settle(t, []*fixture{n})
	if g := n.stats(t).Granted - granted; g == 0 || g > 60 {
		t.Fatalf("granted %d in 0.5 s of fallback at 100/s", g)
	}
	srv.Restart()
	actortest.Eventually(t, "the limiter leaves the fallback once redis is back", func() bool {
		clk.Advance(cluster.HeartbeatEvery)
		return !n.stats(t).Cluster.Fallback
	})
}
