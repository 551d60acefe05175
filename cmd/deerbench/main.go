// Command deerbench is `make bench`: it runs deersim, nginx, deerd and (when
// installed) Portkey side by side on this machine, drives them with
// deerload through phases A (sequential added latency), B (open-loop load
// at rising rates) and C (features: cache hits, coalescing, embedding
// batching, the hit ratio under Zipf-distributed requests, retries,
// Retry-After, the breaker), and rewrites the generated section of
// docs/benchmarks.md with the tables, the machine, the versions, the
// commands and SVG plots. The Makefile installs nginx and Portkey and
// builds the binaries first; deerbench finds what is there and reports what
// is not.
//
// Usage:
//
//	deerbench [--quick] [--bin bin] [--work .bench] [--out docs/benchmarks.md]
//	          [--nginx PATH] [--node PATH] [--portkey PATH/start-server.js]
//	          [--base-port 9400] [--from .bench/results.json]
//	deerbench goproxy --addr HOST:PORT --upstream URL   (the reference Go proxy the bench runs)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/deer-runtime/deer/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "goproxy" {
		return goproxy(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("deerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "the short version (about two minutes)")
	opts := bench.Options{Log: stderr}
	var out, from string
	fs.StringVar(&opts.Bin, "bin", "bin", "directory with deerd, deersim and deerload")
	fs.StringVar(&opts.Work, "work", ".bench", "scratch directory: configs, logs, results.json")
	fs.StringVar(&out, "out", "docs/benchmarks.md", "the document whose generated section is rewritten")
	fs.StringVar(&opts.Nginx, "nginx", lookPath("nginx", "/usr/sbin/nginx"), "nginx binary (empty: leave nginx out)")
	fs.StringVar(&opts.Node, "node", lookPath("node"), "node binary, to run Portkey")
	fs.StringVar(&opts.Portkey, "portkey", existing(".bench/portkey/node_modules/@portkey-ai/gateway/build/start-server.js"),
		"Portkey's build/start-server.js (empty: leave Portkey out)")
	fs.StringVar(&from, "from", "", "render the document from a saved results.json instead of running")
	fs.IntVar(&opts.BasePort, "base-port", 9400, "deersim listens on base+1, nginx +2, deerd +3, Portkey +4, go-proxy +5")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deerbench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if self, err := os.Executable(); err == nil {
		opts.GoProxy = []string{self, "goproxy"}
	}
	if from != "" {
		return render(from, opts.Work, out, stderr)
	}
	if bench.OnlineCPUs() >= 2 {
		opts.Taskset = lookPath("taskset")
	}
	for _, bin := range []string{"deerd", "deersim", "deerload"} {
		if _, err := os.Stat(filepath.Join(opts.Bin, bin)); err != nil {
			fmt.Fprintf(stderr, "deerbench: %s not found in %s: run make build first\n", bin, opts.Bin)
			return 1
		}
	}
	plan := bench.FullPlan()
	if *quick {
		plan = bench.QuickPlan()
	}
	res, err := bench.Run(ctx, opts, plan)
	if err != nil {
		fmt.Fprintln(stderr, "deerbench:", err)
		return 1
	}
	res.DescribeMachine(opts, gitVersion())
	if err := write(res, opts.Work, out); err != nil {
		fmt.Fprintln(stderr, "deerbench:", err)
		return 1
	}
	fmt.Fprintf(stderr, "deerbench: wrote %s (and %s)\n", out, filepath.Join(opts.Work, "results.json"))
	for _, g := range res.Goals() {
		fmt.Fprintf(stderr, "  %-8s %s: %s\n", g.Met, g.Goal, g.Measured)
	}
	return 0
}

// render rewrites the document from a saved run, for a report whose
// format changed since: the numbers are the run's, untouched.
func render(from, work, out string, stderr io.Writer) int {
	raw, err := os.ReadFile(from)
	var res bench.Results
	if err == nil {
		err = json.Unmarshal(raw, &res)
	}
	if err == nil {
		err = write(&res, work, out)
	}
	if err != nil {
		fmt.Fprintln(stderr, "deerbench:", err)
		return 1
	}
	fmt.Fprintf(stderr, "deerbench: wrote %s from %s\n", out, from)
	return 0
}

// goproxy is deerbench's reference-proxy mode: Go's httputil.ReverseProxy
// alone, which the bench runs as one more target.
func goproxy(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("deerbench goproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9405", "listen address")
	upstream := fs.String("upstream", "", "the upstream's base URL")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := bench.ServeGoProxy(ctx, *addr, *upstream); err != nil {
		fmt.Fprintln(stderr, "deerbench goproxy:", err)
		return 1
	}
	return 0
}

// write saves the raw results, the plots beside the document (in bench/),
// and the document with its generated section replaced.
func write(res *bench.Results, work, out string) error {
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "results.json"), raw, 0o644); err != nil {
		return err
	}
	plotDir := filepath.Join(filepath.Dir(out), "bench")
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return err
	}
	var plots []string
	for name, svg := range res.AddedPlots() {
		if err := os.WriteFile(filepath.Join(plotDir, name), []byte(svg), 0o644); err != nil {
			return err
		}
		plots = append(plots, "bench/"+name)
	}
	slices.Sort(plots)
	doc, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(doc) == 0 {
		doc = []byte("# Benchmarks\n")
	}
	updated, err := bench.Splice(string(doc), res.Markdown(plots))
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return os.WriteFile(out, []byte(updated), 0o644)
}

// lookPath is the first of names found on PATH or as a path; "" if none.
func lookPath(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

func existing(path string) string {
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return ""
}

// gitVersion names the deerd being measured: the commit, marked when the
// tree has changes.
func gitVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
