// Command deersim is a simulated OpenAI-compatible upstream with knobs for
// latency and faults, for development, tests, benchmarks and drills. See
// package internal/sim for the endpoints and the order of the fault steps.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/deer-runtime/deer/internal/logging"
	"github.com/deer-runtime/deer/internal/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, nil))
}

// run parses the flags and serves until ctx ends; ready, if not nil, gets
// the bound address once the simulator accepts connections. It returns the
// exit code: 0 after a clean shutdown, 1 on failure, 2 for bad usage.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) int {
	fs := flag.NewFlagSet("deersim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	k := sim.DefaultKnobs()
	addr := fs.String("addr", "127.0.0.1:8001", "listen address HOST:PORT")
	fs.DurationVar(&k.Latency, "latency", k.Latency, "delay before every answer (Go duration)")
	fs.Float64Var(&k.ErrorRate, "error-rate", k.ErrorRate, "fraction of requests answered 500 (0..1)")
	fs.Float64Var(&k.Capacity, "capacity", k.Capacity, "requests per second above which it answers 429 with Retry-After (0 = unlimited)")
	fs.IntVar(&k.RetryAfter, "retry-after", k.RetryAfter, "Retry-After of a 429, seconds")
	fs.Float64Var(&k.HangRate, "hang-rate", k.HangRate, "fraction of requests that hang until the client gives up (0..1)")
	fs.Float64Var(&k.ResetRate, "reset-rate", k.ResetRate, "fraction of requests whose connection is reset (0..1)")
	fs.IntVar(&k.StreamChunks, "stream-chunks", k.StreamChunks, "chunks of a streamed chat answer")
	fs.DurationVar(&k.StreamInterval, "stream-interval", k.StreamInterval, "pause between streamed chunks (Go duration)")
	seed := fs.Int64("seed", 0, "seed of the fault draws, for repeatable runs (0 = random)")
	debug := fs.Bool("debug", false, "human-readable debug logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deersim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := k.Validate(); err != nil {
		fmt.Fprintf(stderr, "deersim: invalid flags: %v\n", flagNames(err))
		return 2
	}

	logger, _ := logging.New(stderr, *debug)
	opts := []sim.Option{sim.WithLogger(logger)}
	if *seed != 0 {
		opts = append(opts, sim.WithSeed(*seed))
	}
	s := sim.New(k, opts...)
	ln, err := sim.Listen(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "deersim: %v\n", err)
		return 1
	}
	logger.Info().Str("addr", ln.Addr().String()).RawJSON("knobs", mustJSON(k)).Msg("deersim listening")
	if ready != nil {
		ready(ln.Addr())
	}
	if err := s.Serve(ctx, ln); err != nil {
		logger.Error().Err(err).Msg("deersim stopped")
		return 1
	}
	logger.Info().Msg("deersim stopped")
	return 0
}

// flagNames lists the problems of Knobs.Validate under the flag names
// (--error-rate) rather than the knob keys (error_rate).
func flagNames(err error) string {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		if ke := (*sim.KnobError)(nil); errors.As(e, &ke) {
			msgs = append(msgs, "--"+strings.ReplaceAll(ke.Key, "_", "-")+": "+ke.Reason)
		} else {
			msgs = append(msgs, e.Error())
		}
	}
	return strings.Join(msgs, "; ")
}

func mustJSON(k sim.Knobs) []byte {
	b, _ := k.MarshalJSON() // cannot fail: plain fields
	return b
}
