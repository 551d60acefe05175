package pool

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// connCounter counts a test server's connections: opened in total and open
// at once (and the most ever open at once).
type connCounter struct {
	mu                sync.Mutex
	opened, open, max int
}

func (c *connCounter) hook(_ net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		c.opened++
		c.open++
		c.max = max(c.max, c.open)
	case http.StateClosed, http.StateHijacked:
		c.open--
	}
}

func (c *connCounter) get() (opened, open, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.open, c.max
}

func newServer(t *testing.T, h http.Handler) (*httptest.Server, *connCounter) {
	t.Helper()
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cc.hook
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}

func testConfig(base string, mut func(*conf.Config)) *conf.Config {
	cfg := conf.Default()
	cfg.ConnectionPool.MaxConnections = 4
	cfg.ConnectionPool.InitialConnections = 0
	cfg.ConnectionPool.ConnectionTimeout = 2
	cfg.ConnectionPool.MaxRetries = 1
	cfg.Upstreams = map[string]conf.Upstream{"sim": {BaseURL: base}}
	if mut != nil {
		mut(cfg)
	}
	return cfg
}

type fixture struct {
	system *actor.ActorSystem
	pid    *actor.PID
	live   *conf.Live
	clock  *clock.Fake
	set    *metrics.Set
	logs   *actortest.SyncBuffer
}

func start(t *testing.T, cfg *conf.Config) *fixture { return startWith(t, cfg, nil) }

// startWith starts pool/sim with lane (nil: none).
func startWith(t *testing.T, cfg *conf.Config, lane *Lane) *fixture {
	t.Helper()
	return startDeps(t, cfg, func(d *Deps) { d.Lane = lane })
}

// startDeps starts pool/sim with the Deps mut gives.
func startDeps(t *testing.T, cfg *conf.Config, mut func(*Deps)) *fixture {
	t.Helper()
	f := &fixture{
		system: actortest.NewSystem(t),
		live:   conf.NewLive(cfg),
		clock:  clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		set:    metrics.NewSet(),
		logs:   &actortest.SyncBuffer{},
	}
	d := Deps{
		Name: "pool/sim", Upstream: "sim", Live: f.live, Clock: f.clock,
		Log: zerolog.New(f.logs), Metrics: f.set,
	}
	mut(&d)
	f.pid = actortest.Spawn(t, f.system, actortest.Panicky(Props(d)))
	return f
}

func (f *fixture) stats(t *testing.T) *messages.PoolStats {
	return actortest.Stats[*messages.PoolStats](t, f.system, f.pid)
}

func (f *fixture) apply(t *testing.T, cfg *conf.Config) {
	t.Helper()
	f.live.Store(cfg)
	if r := actortest.Ask[*messages.ConfigApplied](t, f.system, f.pid, &messages.ApplyConfig{Config: cfg}); r.Err != "" || r.Actor != "pool/sim" {
		t.Fatalf("ConfigApplied %+v", r)
	}
}

func TestAdminMessages(t *testing.T) {
	f := start(t, testConfig("http://127.0.0.1:1", nil))
	if p := actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{Seq: 7}); p.Seq != 7 || p.Actor != "pool/sim" {
		t.Fatalf("pong %+v", p)
	}
	if s := actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{}); s.State != messages.StateHealthy {
		t.Fatalf("status %+v", s)
	}
	st := f.stats(t)
	if st.Upstream != "sim" || st.MaxConnections != 4 || st.DialTimeout != 2 || st.DialRetries != 1 || st.IdleTimeout != 300 {
		t.Fatalf("stats %+v", st)
	}
	// An unknown message is logged, not fatal.
	f.system.Root.Send(f.pid, "nonsense")
	actortest.Ask[*messages.Pong](t, f.system, f.pid, &messages.Ping{})
}

func TestWarmUpOpensInitialConnections(t *testing.T) {
	srv, cc := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f := start(t, testConfig(srv.URL, func(c *conf.Config) { c.ConnectionPool.InitialConnections = 3 }))
	actortest.Eventually(t, "3 warm connections", func() bool { return f.stats(t).WarmConnections == 3 })
	if opened, open, _ := cc.get(); opened != 3 || open != 3 {
		t.Fatalf("server saw %d connections opened, %d open; want 3, 3", opened, open)
	}
	// The first calls reuse them.
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 1, ReplyTo: pid})
	l := actortest.Recv[*messages.ConnectionLeased](t, ch)
	if l.Endpoint != srv.URL || l.Client == nil {
		t.Fatalf("lease %+v", l)
	}
	resp, err := l.Client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if opened, _, _ := cc.get(); opened != 3 {
		t.Fatalf("a call after warm-up opened a connection: %d opened", opened)
	}
}

// A pool whose upstream's key is missing opens nothing ahead of demand, at
// start or on a new transport, and says why it is disabled. A keyed pool
// started after it warms: the keyless one had the head start.
func TestKeylessUpstreamIsNotWarmed(t *testing.T) {
	srv, cc := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	warmCfg := func(c *conf.Config) { c.ConnectionPool.InitialConnections = 3 }
	f := startDeps(t, testConfig(srv.URL, warmCfg), func(d *Deps) { d.KeyMissing = "DEER_POOL_TEST_KEY" })
	f.stats(t) // Started has run
	// A new transport, which would warm again.
	f.apply(t, testConfig(srv.URL, func(c *conf.Config) { warmCfg(c); c.ConnectionPool.IdleTimeout = 120 }))

	keyedSrv, keyedCC := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	keyed := start(t, testConfig(keyedSrv.URL, warmCfg))
	actortest.Eventually(t, "the keyed pool's 3 warm connections", func() bool { return keyed.stats(t).WarmConnections == 3 })
	if opened, _, _ := keyedCC.get(); opened != 3 {
		t.Fatalf("keyed pool opened %d connections, want 3", opened)
	}
	if opened, _, _ := cc.get(); opened != 0 || f.stats(t).WarmConnections != 0 {
		t.Fatalf("keyless pool opened %d connections", opened)
	}
	s := actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{})
	if s.State != messages.StateDisabled || !strings.Contains(s.Detail, "DEER_POOL_TEST_KEY") {
		t.Fatalf("status %+v, want disabled naming the variable", s)
	}
}

func TestWarmUpToleratesDownUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: dials are refused
	f := start(t, testConfig("http://"+addr, func(c *conf.Config) {
		c.ConnectionPool.InitialConnections = 2
		c.ConnectionPool.MaxRetries = 2
	}))
	// Each of the 2 warm-up dials is tried 1+2 times before it fails.
	actortest.Eventually(t, "warm-up dials to fail", func() bool { return f.stats(t).DialFailures == 2 })
	st := f.stats(t)
	if st.DialRetriesUsed != 4 || st.WarmConnections != 0 {
		t.Fatalf("retries %d warm %d; want 4, 0", st.DialRetriesUsed, st.WarmConnections)
	}
	if s := actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{}); s.State != messages.StateHealthy {
		t.Fatalf("status %+v", s)
	}
}

func TestMaxConnectionsEnforcedByTransport(t *testing.T) {
	const calls, maxConns = 10, 3
	release := make(chan struct{})
	var inside sync.WaitGroup
	inside.Add(maxConns)
	srv, cc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside.Done()
		<-release
	}))
	f := start(t, testConfig(srv.URL, func(c *conf.Config) {
		c.ConnectionPool.MaxConnections = maxConns
		c.ParallelExecution.WorkerTimeout = 3600
	}))
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 1, ReplyTo: pid})
	client := actortest.Recv[*messages.ConnectionLeased](t, ch).Client

	// More calls than connections, through the shared client directly: the
	// transport itself must hold the line at max_connections.
	var done sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		done.Add(1)
		go func() {
			defer done.Done()
			resp, err := client.Get(srv.URL)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
		}()
	}
	inside.Wait() // maxConns handlers are blocked; the rest wait in the transport
	if _, open, _ := cc.get(); open != maxConns {
		t.Fatalf("%d connections open with calls waiting, want %d", open, maxConns)
	}
	// The remaining handlers call inside.Done past zero otherwise.
	inside.Add(calls - maxConns)
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, _, most := cc.get(); most > maxConns {
		t.Fatalf("%d connections open at once, max_connections %d", most, maxConns)
	}
}

func TestLeaseAccounting(t *testing.T) {
	f := start(t, testConfig("http://127.0.0.1:1", func(c *conf.Config) { c.ConnectionPool.MaxConnections = 2 }))
	pid, ch := actortest.Probe(t, f.system)
	for ref := uint64(1); ref <= 3; ref++ {
		f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: ref, ReplyTo: pid})
	}
	a, b := actortest.Recv[*messages.ConnectionLeased](t, ch), actortest.Recv[*messages.ConnectionLeased](t, ch)
	if a.Ref != 1 || b.Ref != 2 || a.LeaseID == b.LeaseID || a.Client != b.Client {
		t.Fatalf("leases %+v %+v", a, b)
	}
	st := f.stats(t)
	if st.ActiveConnections != 2 || st.Waiting != 1 || st.Utilization != 1 || st.TotalAcquired != 2 || st.PeakUsage != 2 {
		t.Fatalf("stats %+v", st)
	}
	if got := actortest.Drain(t, f.system, pid, ch); len(got) != 0 {
		t.Fatalf("third request granted over max: %+v", got)
	}
	s := actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{})
	if s.State != messages.StateDegraded || !strings.Contains(s.Detail, "high_utilization_threshold") {
		t.Fatalf("status at 2/2: %+v", s)
	}
	if n := f.logs.Count("utilization above"); n != 1 {
		t.Fatalf("%d warn lines for one crossing, want 1", n)
	}

	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: a.LeaseID})
	c := actortest.Recv[*messages.ConnectionLeased](t, ch)
	if c.Ref != 3 {
		t.Fatalf("waiter got %+v", c)
	}
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: a.LeaseID}) // twice: ignored
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: b.LeaseID})
	f.system.Root.Send(f.pid, &messages.CancelAcquire{Owner: pid, Ref: 3})
	st = f.stats(t)
	want := messages.PoolStats{ActiveConnections: 0, MaxConnections: 2, TotalAcquired: 3, TotalReleased: 3, PeakUsage: 2}
	if st.ActiveConnections != want.ActiveConnections || st.TotalAcquired != want.TotalAcquired ||
		st.TotalReleased != want.TotalReleased || st.PeakUsage != want.PeakUsage || st.Waiting != 0 {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	if s := actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{}); s.State != messages.StateHealthy {
		t.Fatalf("status after release: %+v", s)
	}

	var prom bytes.Buffer
	f.set.WritePrometheus(&prom)
	for _, line := range []string{
		`deer_pool_active_connections{upstream="sim"} 0`,
		`deer_pool_max_connections{upstream="sim"} 2`,
		`deer_pool_acquired_total{upstream="sim"} 3`,
	} {
		if !strings.Contains(prom.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, prom.String())
		}
	}
}

func TestReclaimAfterWorkerTimeout(t *testing.T) {
	f := start(t, testConfig("http://127.0.0.1:1", func(c *conf.Config) {
		c.ConnectionPool.MaxConnections = 1
		c.ParallelExecution.WorkerTimeout = 10
	}))
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 1, ReplyTo: pid})
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 2, ReplyTo: pid})
	first := actortest.Recv[*messages.ConnectionLeased](t, ch)
	actortest.Timers(t, f.clock, 10*time.Second) // the reclaim timer
	f.clock.Advance(10 * time.Second)
	second := actortest.Recv[*messages.ConnectionLeased](t, ch)
	if second.Ref != 2 {
		t.Fatalf("after reclaim got %+v", second)
	}
	// The reclaimed lease's late release must not free the new one.
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: first.LeaseID})
	st := f.stats(t)
	if st.Reclaimed != 1 || st.ActiveConnections != 1 || st.TotalReleased != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func transportOf(t *testing.T, f *fixture) *http.Transport {
	t.Helper()
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 99, ReplyTo: pid})
	l := actortest.Recv[*messages.ConnectionLeased](t, ch)
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: l.LeaseID})
	return l.Client.Transport.(*http.Transport)
}

func TestApplyConfigLive(t *testing.T) {
	srv, _ := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	base := testConfig(srv.URL, nil)
	cases := []struct {
		key   string
		mut   func(*conf.ConnectionPool)
		check func(t *testing.T, tr *http.Transport, st *messages.PoolStats)
	}{
		{"max_connections", func(p *conf.ConnectionPool) { p.MaxConnections = 9 }, func(t *testing.T, tr *http.Transport, st *messages.PoolStats) {
			if tr.MaxConnsPerHost != 9 || tr.MaxIdleConnsPerHost != 9 || st.MaxConnections != 9 {
				t.Errorf("max %d idle %d stats %d, want 9", tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, st.MaxConnections)
			}
		}},
		{"connection_timeout", func(p *conf.ConnectionPool) { p.ConnectionTimeout = 7.5 }, func(t *testing.T, tr *http.Transport, st *messages.PoolStats) {
			if tr.TLSHandshakeTimeout != 7500*time.Millisecond || st.DialTimeout != 7.5 {
				t.Errorf("tls timeout %v stats %v, want 7.5s", tr.TLSHandshakeTimeout, st.DialTimeout)
			}
		}},
		{"idle_timeout", func(p *conf.ConnectionPool) { p.IdleTimeout = 42 }, func(t *testing.T, tr *http.Transport, st *messages.PoolStats) {
			if tr.IdleConnTimeout != 42*time.Second || st.IdleTimeout != 42 {
				t.Errorf("idle %v stats %v, want 42s", tr.IdleConnTimeout, st.IdleTimeout)
			}
		}},
		{"max_retries", func(p *conf.ConnectionPool) { p.MaxRetries = 5 }, func(t *testing.T, _ *http.Transport, st *messages.PoolStats) {
			if st.DialRetries != 5 {
				t.Errorf("max_retries %d, want 5", st.DialRetries)
			}
		}},
		{"initial_connections", func(p *conf.ConnectionPool) { p.InitialConnections = 2 }, func(t *testing.T, _ *http.Transport, _ *messages.PoolStats) {}},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			f := start(t, base)
			before := transportOf(t, f)
			cfg := testConfig(srv.URL, func(c *conf.Config) { tc.mut(&c.ConnectionPool) })
			f.apply(t, cfg)
			after := transportOf(t, f)
			if after == before {
				t.Fatal("changing connection_pool kept the old transport")
			}
			tc.check(t, after, f.stats(t))
		})
	}
	t.Run("initial_connections warms the new transport", func(t *testing.T) {
		own, cc := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		f := start(t, testConfig(own.URL, nil))
		f.apply(t, testConfig(own.URL, func(c *conf.Config) { c.ConnectionPool.InitialConnections = 2 }))
		actortest.Eventually(t, "2 warm connections", func() bool { return f.stats(t).WarmConnections == 2 })
		actortest.Eventually(t, "the server to see 2 connections", func() bool { opened, _, _ := cc.get(); return opened == 2 })
	})
	t.Run("raising max_connections admits waiters", func(t *testing.T) {
		f := start(t, testConfig(srv.URL, func(c *conf.Config) { c.ConnectionPool.MaxConnections = 1 }))
		pid, ch := actortest.Probe(t, f.system)
		f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 1, ReplyTo: pid})
		f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 2, ReplyTo: pid})
		actortest.Recv[*messages.ConnectionLeased](t, ch)
		f.apply(t, testConfig(srv.URL, func(c *conf.Config) { c.ConnectionPool.MaxConnections = 2 }))
		if l := actortest.Recv[*messages.ConnectionLeased](t, ch); l.Ref != 2 {
			t.Fatalf("got %+v", l)
		}
	})
	t.Run("high_utilization_threshold", func(t *testing.T) {
		f := start(t, testConfig(srv.URL, func(c *conf.Config) { c.ConnectionPool.MaxConnections = 4 }))
		pid, ch := actortest.Probe(t, f.system)
		for ref := range uint64(2) {
			f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: ref, ReplyTo: pid})
			actortest.Recv[*messages.ConnectionLeased](t, ch)
		}
		if s := actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{}); s.State != messages.StateHealthy {
			t.Fatalf("2/4 at threshold 0.8: %+v", s)
		}
		f.apply(t, testConfig(srv.URL, func(c *conf.Config) {
			c.ConnectionPool.MaxConnections = 4
			c.Monitoring.HighUtilizationThreshold = 0.4
		}))
		if s := actortest.Ask[*messages.StatusReport](t, f.system, f.pid, &messages.StatusQuery{}); s.State != messages.StateDegraded {
			t.Fatalf("2/4 at threshold 0.4: %+v", s)
		}
	})
}

func TestRestartKeepsWorking(t *testing.T) {
	f := start(t, testConfig("http://127.0.0.1:1", nil))
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 1, ReplyTo: pid})
	old := actortest.Recv[*messages.ConnectionLeased](t, ch)
	// The configuration changes while the actor is down; the restarted
	// incarnation must run with the one in force.
	f.live.Store(testConfig("http://127.0.0.1:1", func(c *conf.Config) { c.ConnectionPool.MaxConnections = 7 }))
	f.system.Root.Send(f.pid, &actortest.PanicNow{})
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 2, ReplyTo: pid})
	fresh := actortest.Recv[*messages.ConnectionLeased](t, ch)
	if fresh.LeaseID == old.LeaseID {
		t.Fatalf("restarted pool reused lease id %d", old.LeaseID)
	}
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: old.LeaseID})
	if st := f.stats(t); st.ActiveConnections != 1 || st.MaxConnections != 7 {
		t.Fatalf("stats after restart %+v", st)
	}
}

func TestClientRelaysRedirects(t *testing.T) {
	srv, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	f := start(t, testConfig(srv.URL, nil))
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{ReplyTo: pid})
	resp, err := actortest.Recv[*messages.ConnectionLeased](t, ch).Client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d: the client followed the redirect", resp.StatusCode)
	}
}

func TestStopClosesIdleConnections(t *testing.T) {
	srv, cc := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f := start(t, testConfig(srv.URL, func(c *conf.Config) { c.ConnectionPool.InitialConnections = 2 }))
	actortest.Eventually(t, "2 warm connections", func() bool { return f.stats(t).WarmConnections == 2 })
	if err := f.system.Root.StopFuture(f.pid).Wait(); err != nil {
		t.Fatal(err)
	}
	actortest.Eventually(t, "the server to see the idle connections closed", func() bool { _, open, _ := cc.get(); return open == 0 })
}

func TestNewTransportClosesTheOldOnesConnections(t *testing.T) {
	srv, cc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hello")) }))
	f := start(t, testConfig(srv.URL, func(c *conf.Config) { c.ConnectionPool.InitialConnections = 2 }))
	actortest.Eventually(t, "2 warm connections", func() bool { return f.stats(t).WarmConnections == 2 })
	pid, ch := actortest.Probe(t, f.system)
	f.system.Root.Send(f.pid, &messages.AcquireConnection{Ref: 1, ReplyTo: pid})
	old := actortest.Recv[*messages.ConnectionLeased](t, ch)

	f.apply(t, testConfig(srv.URL, func(c *conf.Config) { c.ConnectionPool.IdleTimeout = 120 })) // and no warm-up
	actortest.Eventually(t, "the old transport's idle connections closed", func() bool { _, open, _ := cc.get(); return open == 0 })

	// A lease granted before the change makes its call after it, on the
	// old transport: the connection it opens parks idle there when done.
	resp, err := old.Client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, open, _ := cc.get(); open != 1 {
		t.Fatalf("%d connections open after the late call, want 1", open)
	}
	f.system.Root.Send(f.pid, &messages.ReleaseConnection{LeaseID: old.LeaseID})
	actortest.Eventually(t, "the retired transport's last connection closed", func() bool { _, open, _ := cc.get(); return open == 0 })
}
