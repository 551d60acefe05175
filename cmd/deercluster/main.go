// Command deercluster is `make cluster-demo`: three deerd nodes sharing one
// redis-server, in front of one deersim of limited capacity, driven open
// loop while one node is SIGKILLed and Redis is killed and restarted. It
// prints each measured property against issue 13's goal (see
// internal/clusterdrill and docs/cluster.md) and exits 1 when one is
// missed.
//
// Usage:
//
//	deercluster [--quick] [--bin bin] [--work .cluster] [--redis redis-server]
//	            [--capacity 200] [--rate 300]
//	deercluster --round-trips [--rate 1000] [--shared-rate 3000]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/deer-runtime/deer/internal/clusterdrill"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deercluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "shorter: 5 s of warm-up, 10 s windows, 4 s of Redis outage (the rates are noisier: deersim's one-second bucket moves a 10 s rate by up to 10%)")
	bin := fs.String("bin", "bin", "directory with deerd and deersim")
	work := fs.String("work", ".cluster", "scratch directory: configurations and logs")
	redis := fs.String("redis", "redis-server", "the redis-server binary (Debian package redis-server; scripts/test-deps.sh installs it)")
	capacity := fs.Float64("capacity", 200, "deersim's capacity, req/s")
	rate := fs.Float64("rate", 300, "offered to each of the 3 nodes, req/s")
	sharedRate := fs.Float64("shared-rate", 3000, "with --round-trips: the nodes' rate_limit (initial and max), req/s")
	roundTrips := fs.Bool("round-trips", false, "instead: Redis round trips per upstream call at 1,000 req/s per node, all leased, none refused upstream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	redisBin, err := exec.LookPath(*redis)
	if err != nil {
		fmt.Fprintf(stderr, "deercluster: %s not found: run scripts/test-deps.sh (apt-get install redis-server)\n", *redis)
		return 2
	}
	cfg := clusterdrill.Issue(*bin, redisBin, *work)
	cfg.Capacity, cfg.Rate, cfg.Log = *capacity, *rate, stderr
	if *quick {
		cfg.Warm, cfg.Measure, cfg.Outage = 5*time.Second, 10*time.Second, 4*time.Second
	}
	run := clusterdrill.Run
	if *roundTrips {
		cfg = clusterdrill.RoundTripsDrill(*bin, redisBin, *work)
		cfg.Log, cfg.InitialRate, cfg.MaxRate = stderr, *sharedRate, *sharedRate
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "rate" {
				cfg.Rate = *rate
			}
		})
		run = clusterdrill.RoundTrips
	}
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "deercluster: %v (logs in %s)\n", err, *work)
		return 1
	}
	fmt.Fprint(stdout, res.Markdown())
	if !res.Met() {
		return 1
	}
	return 0
}
