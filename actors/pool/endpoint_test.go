package pool

import (
	"testing"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/messages"
)

func TestLeasesGoToTheEndpointWithFewestCallsInFlight(t *testing.T) {
	withEndpoints := func(balance bool) func(*conf.Config) {
		return func(c *conf.Config) {
			up := c.Upstreams["sim"]
			up.Endpoints = []string{"http://127.0.0.2:1", "http://127.0.0.3:1"}
			c.Upstreams["sim"] = up
			c.ParallelExecution.LoadBalancing = balance
		}
	}
	f := start(t, testConfig("http://127.0.0.1:1", withEndpoints(true)))
	pid, ch := actortest.Probe(t, f.system)
	for ref := uint64(1); ref <= 3; ref++ {
		f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: ref, ReplyTo: pid})
	}
	a := actortest.Recv[*messages.ConnectionLeased](t, ch)
	b := actortest.Recv[*messages.ConnectionLeased](t, ch)
	c := actortest.Recv[*messages.ConnectionLeased](t, ch)
	if got := []string{a.Endpoint, b.Endpoint, c.Endpoint}; got[0] != "http://127.0.0.1:1" || got[1] != "http://127.0.0.2:1" || got[2] != "http://127.0.0.3:1" {
		t.Fatalf("three calls went to %v, want one per endpoint", got)
	}
	// The second endpoint's call ends: the next call goes there.
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: b.LeaseID})
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 4, ReplyTo: pid})
	if d := actortest.Recv[*messages.ConnectionLeased](t, ch); d.Endpoint != "http://127.0.0.2:1" {
		t.Fatalf("fourth call went to %s, want the idle endpoint http://127.0.0.2:1", d.Endpoint)
	}

	// Without load balancing every call goes to base_url.
	g := start(t, testConfig("http://127.0.0.1:1", withEndpoints(false)))
	pid2, ch2 := actortest.Probe(t, g.system)
	for ref := uint64(1); ref <= 2; ref++ {
		g.system.Root.Send(g.pid, &messages.AcquireConnection{Ref: ref, ReplyTo: pid2})
		if l := actortest.Recv[*messages.ConnectionLeased](t, ch2); l.Endpoint != "http://127.0.0.1:1" {
			t.Fatalf("without load balancing a call went to %s", l.Endpoint)
		}
	}
}
