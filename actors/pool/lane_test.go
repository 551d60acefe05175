package pool

import (
	"bytes"
	"strings"
	"testing"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/messages"
)

const laneEndpoint = "http://127.0.0.1:1"

// takeAll takes every free lane slot and reports how many there were.
func takeAll(l *Lane) int {
	n := 0
	for {
		if _, ok := l.Take(laneEndpoint); !ok {
			return n
		}
		n++
	}
}

func TestLaneLendsWhatTheLedgerDoesNotUse(t *testing.T) {
	lane := &Lane{}
	f := startWith(t, testConfig(laneEndpoint, func(c *conf.Config) { c.ConnectionPool.MaxConnections = 4 }), lane)
	f.stats(t) // started and balanced

	if _, ok := lane.Take("http://elsewhere"); ok {
		t.Fatal("the lane serves the upstream's endpoint only")
	}
	l, ok := lane.Take(laneEndpoint)
	if !ok || l.Client == nil || l.Endpoint != laneEndpoint {
		t.Fatalf("first take: %+v %v", l, ok)
	}
	if n := takeAll(lane); n != 2 {
		t.Fatalf("the lane had %d more free slots, want 2 (4, less one kept in the ledger)", n)
	}

	// The ledger's kept slot grants at once; the next request must wait.
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 1, ReplyTo: pid})
	a := actortest.Recv[*messages.ConnectionLeased](t, ch)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 2, ReplyTo: pid})
	st := f.stats(t)
	if st.ActiveConnections != 4 || st.MaxConnections != 4 || st.Waiting != 1 || st.TotalAcquired != 4 || st.PeakUsage != 4 || st.LaneAcquired != 3 {
		t.Fatalf("stats with 3 lane and 1 ledger lease out, 1 waiting: %+v", st)
	}
	if got := actortest.Drain(t, f.system, pid, ch); len(got) != 0 {
		t.Fatalf("granted over max_connections: %+v", got)
	}

	// A slot comes back to the closed lane: the pool is nudged and gives
	// it to the waiter, not back to the lane.
	lane.Return()
	if b := actortest.Recv[*messages.ConnectionLeased](t, ch); b.Ref != 2 {
		t.Fatalf("waiter got %+v", b)
	}
	if _, ok := lane.Take(laneEndpoint); ok {
		t.Fatal("a lane slot was taken while a ledger request was being served")
	}

	// All back: the lane is lent everything again, less the kept slot.
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: a.LeaseID})
	lane.Return()
	lane.Return()
	st = f.stats(t)
	if st.ActiveConnections != 1 || st.Waiting != 0 {
		t.Fatalf("stats with the second ledger lease out: %+v", st)
	}
	if n := takeAll(lane); n != 2 {
		t.Fatalf("lane has %d free slots with one ledger lease out, want 2", n)
	}
	for range 2 {
		lane.Return()
	}

	var prom bytes.Buffer
	f.set.WritePrometheus(&prom)
	if line := `deer_pool_active_connections{upstream="sim"} 1`; !strings.Contains(prom.String(), line) {
		t.Errorf("metrics lack %q (the gauge must count lane leases):\n%s", line, prom.String())
	}
}

func TestLaneShrinksWithMaxConnectionsAndSurvivesRestart(t *testing.T) {
	lane := &Lane{}
	cfg := testConfig(laneEndpoint, func(c *conf.Config) { c.ConnectionPool.MaxConnections = 6 })
	f := startWith(t, cfg, lane)
	f.stats(t)
	if n := takeAll(lane); n != 5 {
		t.Fatalf("lane lent %d, want 5", n)
	}
	f.apply(t, testConfig(laneEndpoint, func(c *conf.Config) { c.ConnectionPool.MaxConnections = 3 }))
	// Five lane leases are out and max is now 3: slots come back to the
	// pool, not to the lane, until there is room again.
	for range 3 {
		lane.Return()
	}
	f.stats(t)
	if _, ok := lane.Take(laneEndpoint); ok {
		t.Fatal("lane lends while more are out than max_connections allows")
	}
	lane.Return()
	lane.Return()
	if st := f.stats(t); st.ActiveConnections != 0 || st.MaxConnections != 3 {
		t.Fatalf("stats after everything came back: %+v", st)
	}
	if n := takeAll(lane); n != 2 {
		t.Fatalf("lane lent %d under max 3, want 2", n)
	}

	// A restart finds two lane leases out: they stay counted, and the
	// lane lends again once they are back.
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	if st := f.stats(t); st.ActiveConnections != 2 || st.MaxConnections != 3 {
		t.Fatalf("stats after restart: %+v", st)
	}
	lane.Return()
	lane.Return()
	f.stats(t)
	if n := takeAll(lane); n != 2 {
		t.Fatalf("lane lent %d after restart, want 2", n)
	}
}

func TestNoLaneForSeveralEndpoints(t *testing.T) {
	lane := &Lane{}
	f := startWith(t, testConfig(laneEndpoint, func(c *conf.Config) {
		c.Upstreams["sim"] = conf.Upstream{BaseURL: laneEndpoint, Endpoints: []string{"http://127.0.0.1:2"}}
	}), lane)
	f.stats(t)
	if _, ok := lane.Take(laneEndpoint); ok {
		t.Fatal("least-in-flight balancing needs the pool: no lane for several endpoints")
	}
	var nilLane *Lane
	if _, ok := nilLane.Take(laneEndpoint); ok || nilLane.InUse() != 0 {
		t.Fatal("a nil lane is closed")
	}
}
