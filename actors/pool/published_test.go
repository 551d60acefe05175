package pool

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

func TestPoolPublishesItsNumbersAtMostEvery50ms(t *testing.T) {
	system := actortest.NewSystem(t)
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pub := &Published{}
	if pub.Load() != nil {
		t.Fatal("an unpublished snapshot should be nil")
	}
	pid := actortest.Spawn(t, system, Props(Deps{
		Name: "pool/sim", Upstream: "sim", Live: conf.NewLive(testConfig("http://127.0.0.1:1", nil)),
		Clock: clk, Log: zerolog.Nop(), Metrics: metrics.NewSet(), Published: pub,
	}))
	first := pub.Load()
	if first == nil || !first.Snapshot || first.ActiveConnections != 0 || first.MaxConnections != 4 {
		t.Fatalf("snapshot at start: %+v", first)
	}
	probePID, ch := actortest.Probe(t, system)
	// The pool publishes after it sends the lease: a stats round trip
	// makes sure it has finished with each acquire before we look.
	system.Root.Send(pid, &messages.AcquireConnection{Ref: 1, ReplyTo: probePID})
	actortest.Recv[*messages.ConnectionLeased](t, ch)
	actortest.Stats[*messages.PoolStats](t, system, pid)
	if got := pub.Load(); got.ActiveConnections != 0 {
		t.Fatalf("published again within 50 ms: %+v", got)
	}
	clk.Advance(publishEvery)
	system.Root.Send(pid, &messages.AcquireConnection{Ref: 2, ReplyTo: probePID})
	actortest.Recv[*messages.ConnectionLeased](t, ch)
	actortest.Stats[*messages.PoolStats](t, system, pid)
	got := pub.Load()
	if got.ActiveConnections != 2 || got.TotalAcquired != 2 {
		t.Fatalf("snapshot after 50 ms: %+v", got)
	}
	// A copy: the reader cannot change what the pool published.
	got.ActiveConnections = 99
	if pub.Load().ActiveConnections != 2 {
		t.Fatal("Load must return a copy")
	}
	var nilPub *Published
	if nilPub.Load() != nil {
		t.Fatal("a nil Published is empty")
	}
}
