package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/deer-runtime/deer/internal/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd()))))
}

// run is deerload with its arguments, outputs and whether stderr is a
// terminal; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, tty bool) int {
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "deerload:", err)
		return 2
	}
	tr := &http.Transport{MaxIdleConnsPerHost: min(cfg.maxInFlight, 1000)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	opts := load.Options{MaxInFlight: cfg.maxInFlight, Timeout: cfg.timeout}
	total := load.Scheduled(cfg.rate, cfg.duration)
	if cfg.mode == "rounds" {
		total = len(cfg.targets) * (cfg.warmup + cfg.rounds*cfg.perRound)
	}
	if tty && !cfg.json {
		bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("deerload "+cfg.mode), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		opts.Progress = func() { _ = bar.Add(1) }
		defer func() { _ = bar.Finish() }()
	}

	var out any
	if cfg.mode == "rate" {
		out, err = load.Constant(ctx, client, cfg.targets[0], cfg.rate, cfg.duration, opts)
	} else {
		out, err = load.Rounds(ctx, client, cfg.targets, cfg.rounds, cfg.perRound, cfg.warmup, opts)
	}
	if err != nil {
		fmt.Fprintln(stderr, "deerload:", err)
		return 1
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	switch r := out.(type) {
	case load.Result:
		printRate(stdout, r)
	case load.RoundsResult:
		printRounds(stdout, r)
	}
	return 0
}
