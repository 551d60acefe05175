package breaker

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

// startNode is the breaker of one node of a cluster: its own actor system
// and shared-breaker connection to srv, the test's fake clock.
func startNode(t *testing.T, clk *clock.Fake, srv *redistest.Server, id string) (*fixture, *cluster.Breakers) {
	t.Helper()
	sh := cluster.NewBreakers(srv.Dial(), id)
	sh.Start()
	t.Cleanup(sh.Close)
	actortest.Eventually(t, "node "+id+" subscribed", sh.Subscribed)
	f := &fixture{
		system: actortest.NewSystem(t), live: conf.NewLive(testConfig(nil)), clock: clk,
		set: metrics.NewSet(), logs: &actortest.SyncBuffer{}, board: NewBoard(),
	}
	f.pid = actortest.Spawn(t, f.system, actortest.Panicky(Props(Deps{
		Name: "breaker/sim/0", Upstream: "sim", Endpoint: endpoint, Live: f.live, Clock: clk,
		Log: zerolog.New(f.logs), Metrics: f.set, Board: f.board, Shared: sh,
	})))
	return f, sh
}

// An endpoint opened by one node is open on the others at once, until the
// opening node's probe is due, and on a node that starts while it is open;
// half_open lets exactly one probe through in the whole cluster, and its
// success closes the endpoint everywhere.
func TestClusterBreakerOpensEverywhereAndProbesOnce(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a, _ := startNode(t, clk, srv, "a")
	b, _ := startNode(t, clk, srv, "b")
	c, _ := startNode(t, clk, srv, "c")
	nodes := []*fixture{a, b, c}

	a.failN(t, 3)
	if st := a.stats(t); st.State != "open" || st.Opens != 1 {
		t.Fatalf("node a: %+v, want open once", st)
	}
	for i, n := range nodes[1:] {
		actortest.Eventually(t, "the opening reaches another node", func() bool { return n.stats(t).State == "open" })
		st, status := n.stats(t), n.status(t)
		if st.Opens != 0 || st.RetryIn != 10 || !strings.Contains(status.Detail, "by node a") {
			t.Fatalf("node %d: %+v %+v, want open by node a for 10s, not counted as its own", i+1, st, status)
		}
		if v := n.check(t); v.Allowed {
			t.Fatalf("node %d let a call through an endpoint open on node a", i+1)
		}
	}
	late, _ := startNode(t, clk, srv, "late")
	// What is left of the opening is Redis's TTL, in real time.
	if st := late.stats(t); st.State != "open" || st.RetryIn <= 9 || st.RetryIn > 10 {
		t.Fatalf("a node started while the endpoint is open: %+v, want open for what is left of 10s", st)
	}
	nodes = append(nodes, late)

	clk.Advance(10 * time.Second)
	for _, n := range nodes {
		actortest.Eventually(t, "half_open at the opening node's probe time", func() bool { return n.stats(t).State == "half_open" })
	}
	var probes []*messages.BreakerVerdict
	var prober *fixture
	for _, n := range nodes {
		if v := n.check(t); v.Allowed {
			probes, prober = append(probes, v), n
		} else if v.RetryIn != 10*time.Second {
			t.Fatalf("refused probe %+v, want retry in 10s (the lost-probe timeout)", v)
		}
	}
	if len(probes) != 1 {
		t.Fatalf("%d probes went out across 4 nodes, want 1", len(probes))
	}
	prober.report(probes[0].Generation, true, 0)
	for _, n := range nodes {
		actortest.Eventually(t, "the probe's success closes every node", func() bool { return n.stats(t).State == "closed" })
	}
	if v := a.check(t); !v.Allowed {
		t.Fatalf("closed everywhere but a call was refused: %+v", v)
	}
}

// A node that cannot reach Redis decides alone, as a single node does: its
// breaker opens on its own failures and it probes from itself.
func TestClusterBreakerWithoutRedisDecidesAlone(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a, sh := startNode(t, clk, srv, "a")
	srv.Kill()
	a.failN(t, 3)
	if st := a.stats(t); st.State != "open" {
		t.Fatalf("%+v, want open", st)
	}
	clk.Advance(10 * time.Second)
	actortest.Eventually(t, "half_open", func() bool { return a.stats(t).State == "half_open" })
	if v := a.check(t); !v.Allowed {
		t.Fatalf("no probe without Redis: %+v", v)
	}
	actortest.Eventually(t, "the opening's publication failed and was counted", func() bool { return sh.Counts().Failed >= 1 })
}
