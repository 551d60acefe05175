// Command deerd is the deer server: the runtime plus its HTTP API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi"
	"github.com/deer-runtime/deer/internal/logging"
)

// shutdownGrace bounds how long deerd waits for in-flight requests on exit.
const shutdownGrace = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default conf/deer.toml when it exists)")
	profile := fs.String("profile", "", "settings profile: production, development or test (conf/profiles/NAME.toml)")
	addr := fs.String("addr", "", "listen address HOST:PORT (overrides server.addr and DEER_HTTP_ADDR)")
	check := fs.Bool("check-config", false, "validate the configuration, print the problems, exit 0 (valid) or 1")
	printCfg := fs.Bool("print-config", false, "print the effective configuration as TOML (secrets redacted) and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deerd: unexpected arguments %q\n", fs.Args())
		return 2
	}

	cfg, warnings, err := loadConfig(*configPath, *profile, *addr)
	if *check {
		// Warnings do not fail the check: deerd starts with them. They are
		// listed all the same, marked, so a typo does not go unseen.
		if err != nil {
			fmt.Fprintf(stdout, "configuration is invalid:\n%s", listProblems(err))
		} else {
			fmt.Fprintln(stdout, "configuration is valid")
		}
		if len(warnings) > 0 {
			fmt.Fprintf(stdout, "warnings (deerd starts, and logs each):\n%s", listProblems(warnings))
		}
		if err != nil {
			return 1
		}
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "deerd: invalid configuration:\n%s", listProblems(err))
		if len(warnings) > 0 {
			fmt.Fprintf(stderr, "deerd: warnings:\n%s", listProblems(warnings))
		}
		return 1
	}
	if *printCfg {
		out, err := cfg.Redacted().TOML()
		if err != nil {
			fmt.Fprintf(stderr, "deerd: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(out)
		return 0
	}
	return serve(cfg, warnings, stderr)
}

// loadConfig layers defaults < profile < file < env, then the --addr flag.
// warnings are the DEER_* variables deer does not read.
func loadConfig(path, profile, addr string) (cfg *conf.Config, warnings conf.FieldErrors, err error) {
	if path == "" {
		if _, err := os.Stat(conf.DefaultPath); err == nil {
			path = conf.DefaultPath
		}
	}
	l := conf.LoadAll(conf.LoadOptions{ConfigPath: path, Profile: profile, Lookup: os.LookupEnv, Environ: os.Environ})
	if len(l.Problems) > 0 {
		return nil, l.Warnings, l.Problems
	}
	if addr != "" {
		l.Config.Server.Addr = addr
		if err := l.Config.Validate(); err != nil {
			return nil, l.Warnings, err
		}
	}
	return l.Config, l.Warnings, nil
}

func listProblems(err error) string {
	var fe conf.FieldErrors
	if errors.As(err, &fe) {
		s := ""
		for _, e := range fe {
			s += "  - " + e.Error() + "\n"
		}
		return s
	}
	return "  - " + err.Error() + "\n"
}

func serve(cfg *conf.Config, warnings conf.FieldErrors, stderr io.Writer) int {
	log, levels := logging.New(stderr, cfg.DebugMode)
	for _, w := range warnings {
		log.Warn().Str("env", w.Env).Msg(w.Error())
	}
	setLevel := func(debug bool) { levels.SetLevel(logging.LevelFor(debug)) }

	// Listen before starting the actors, so a taken port fails fast.
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		log.Error().Err(err).Str("addr", cfg.Server.Addr).Msg("cannot listen (server.addr / DEER_HTTP_ADDR / --addr)")
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	counters := &httpapi.Counters{}
	var draining atomic.Bool
	rt, err := deer.Start(ctx, cfg,
		deer.WithLogger(log, setLevel),
		deer.WithActor("http", httpapi.ActorProps(cfg.Server.Addr, counters, draining.Load, log)),
	)
	if err != nil {
		ln.Close()
		log.Error().Err(err).Msg("cannot start the runtime")
		return 1
	}
	api := httpapi.New(rt, counters, log)
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg("deerd listening")

	code := 0
	select {
	case <-ctx.Done():
		stop() // a second signal now ends the process at once
		log.Info().Msg("shutting down")
	case err := <-served:
		log.Error().Err(err).Msg("HTTP server stopped")
		code = 1
	}
	// Stop taking work (new requests get 503), let queued and running tasks
	// finish so their callers get answers, then close the listener. The
	// drain is not logged here: rt.Stop drains too (a second drain answers
	// at once with the first one's outcome) and logs the outcome, once.
	draining.Store(true)
	api.SetDraining(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_, _ = rt.Drain(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn().Err(err).Msg("HTTP shutdown did not finish in time")
	}
	if err := rt.Stop(shutdownCtx); err != nil {
		log.Warn().Err(err).Msg("runtime stop did not finish in time")
	}
	log.Info().Msg("stopped")
	return code
}
