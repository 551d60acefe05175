// Command deerab is the A/B harness's server (issue 12): deerd's runtime
// and handler on deerd's configuration, with the hot OpenAI routes served
// on net/http or fasthttp (--ingress) and upstreams called through
// net/http's transports or fasthttp's client (--upstream). With --ingress
// net --upstream net it is deerd. scripts/httpab/run.sh drives it.
//
//	deerab --config deerd.toml --addr 127.0.0.1:9601 --ingress fast --upstream net
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi"
	"github.com/deer-runtime/deer/internal/httpab"
	"github.com/deer-runtime/deer/internal/logging"
)

func main() { os.Exit(run()) }

func run() int {
	configPath := flag.String("config", "", "deerd configuration file")
	addr := flag.String("addr", "", "listen address (overrides server.addr)")
	ingress := flag.String("ingress", "net", "HTTP server of the OpenAI routes: net or fast")
	upstream := flag.String("upstream", "net", "upstream HTTP client: net or fast")
	flag.Parse()
	if (*ingress != "net" && *ingress != "fast") || (*upstream != "net" && *upstream != "fast") {
		fmt.Fprintln(os.Stderr, "deerab: --ingress and --upstream take net or fast")
		return 2
	}
	l := conf.LoadAll(conf.LoadOptions{ConfigPath: *configPath, Lookup: os.LookupEnv, Environ: os.Environ})
	if len(l.Problems) > 0 {
		fmt.Fprintf(os.Stderr, "deerab: %v\n", l.Problems)
		return 1
	}
	cfg := l.Config
	if *addr != "" {
		cfg.Server.Addr = *addr
	}
	log, levels := logging.New(os.Stderr, cfg.DebugMode)
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deerab: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	counters := &httpapi.Counters{}
	opts := []deer.Option{
		deer.WithLogger(log, func(debug bool) { levels.SetLevel(logging.LevelFor(debug)) }),
		deer.WithActor("http", httpapi.ActorProps(cfg.Server.Addr, counters, func() bool { return false }, log)),
	}
	if *upstream == "fast" {
		opts = append(opts, deer.WithRoundTripper(httpab.NewTransport(cfg.ConnectionPool.MaxConnections)))
	}
	rt, err := deer.Start(ctx, cfg, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deerab: %v\n", err)
		return 1
	}
	api := httpapi.New(rt, counters, log)
	served := make(chan error, 1)
	shutdown := func(context.Context) error { return nil }
	if *ingress == "fast" {
		srv := httpab.NewIngress(api, rt).Server()
		go func() { served <- srv.Serve(ln) }()
		shutdown = func(ctx context.Context) error { return srv.ShutdownWithContext(ctx) }
	} else {
		srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
		go func() { served <- srv.Serve(ln) }()
		shutdown = srv.Shutdown
	}
	log.Info().Str("addr", ln.Addr().String()).Str("ingress", *ingress).Str("upstream", *upstream).Msg("deerab listening")
	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error().Err(err).Msg("server stopped")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = shutdown(sctx)
	_ = rt.Stop(sctx)
	return 0
}
