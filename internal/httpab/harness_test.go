package httpab

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi"
)

// variant is one side of the A/B: which stack serves the routes and which
// calls the upstream.
type variant struct {
	name                string
	fastIngress, fastUp bool
}

var variants = []variant{
	{"A_net", false, false},
	{"B_fastIngress", true, false},
	{"C_fastBoth", true, true},
	{"D_fastUpstream", false, true},
}

// config is the defaults with one upstream "sim" at url serving sim-model
// and sim-embed, limiter and retries out of the way.
func config(t testing.TB, url string) *conf.Config {
	t.Helper()
	cfg := conf.Default()
	cfg.Cache.L3Path = t.TempDir()
	cfg.ConnectionPool.InitialConnections = 1
	cfg.ErrorRecovery.MaxRetries = 0
	cfg.RateLimit.InitialRate, cfg.RateLimit.MaxRate, cfg.RateLimit.BurstAllowance = 100000, 100000, 100000
	cfg.Monitoring.DetailedLogging = false
	up := conf.NewUpstream(url)
	up.Models = []string{"sim-model", "sim-embed"}
	cfg.Upstreams = map[string]conf.Upstream{"sim": up}
	return cfg
}

// serve starts a runtime on cfg and the variant's server; it returns the
// server's base URL.
func serve(t testing.TB, cfg *conf.Config, v variant) string {
	t.Helper()
	log := zerolog.New(io.Discard)
	opts := []deer.Option{deer.WithLogger(log, nil)}
	if v.fastUp {
		opts = append(opts, deer.WithRoundTripper(NewTransport(cfg.ConnectionPool.MaxConnections)))
	}
	rt, err := deer.Start(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	api := httpapi.New(rt, &httpapi.Counters{}, log)
	var url string
	var stop func()
	if v.fastIngress {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := NewIngress(api, rt).Server()
		go func() { _ = srv.Serve(ln) }()
		url, stop = "http://"+ln.Addr().String(), func() { _ = srv.Shutdown() }
	} else {
		srv := httptest.NewServer(api)
		url, stop = srv.URL, srv.Close
	}
	t.Cleanup(func() {
		stop()
		if err := rt.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return url
}

// client is a keep-alive net/http client, the same for every variant.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
