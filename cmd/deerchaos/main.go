// Command deerchaos is `make chaos`: the fault drill of issue 10. It starts
// deersim and a deerd with fault injection enabled, drives deerd at a
// steady open-loop rate with a mix of chats, streamed chats, embeddings,
// async tasks and cache hits, and meanwhile crashes every actor kind in
// turn through /faults, then delays and drops messages, then makes the
// upstream fail through deersim's /_control. It accounts for every request
// (lost and duplicated answers must be 0), rewrites the generated section
// of docs/chaos.md with the tables and an SVG timeline, and exits 1 when
// anything was lost or answered twice (see internal/chaos).
//
// Usage:
//
//	deerchaos [--quick] [--rate 300] [--duration 60s] [--grace 20s]
//	          [--bin bin] [--work .chaos] [--out docs/chaos.md]
//	          [--base-port 9500] [--from .chaos/results.json]
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
	"strings"
	"syscall"
	"time"

	"github.com/deer-runtime/deer/internal/bench"
	"github.com/deer-runtime/deer/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("deerchaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "the short drill: 100 req/s for 10 s, every phase")
	rate := fs.Float64("rate", 0, "requests per second (default 300; 100 with --quick)")
	duration := fs.Duration("duration", 0, "length of the load schedule (default 60s; 10s with --quick)")
	grace := fs.Duration("grace", 0, "wait for the last answers after the schedule; later is lost (default 20s; 6s with --quick)")
	l := chaos.Launch{}
	var out, from string
	fs.StringVar(&l.Bin, "bin", "bin", "directory with deerd and deersim")
	fs.StringVar(&l.Work, "work", ".chaos", "scratch directory: deerd.toml, logs, results.json")
	fs.StringVar(&out, "out", "docs/chaos.md", "the document whose generated section is rewritten")
	fs.IntVar(&l.BasePort, "base-port", 9500, "deersim listens on base+1, deerd on base+3")
	fs.StringVar(&from, "from", "", "render the document from a saved results.json instead of running")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deerchaos: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if from != "" {
		res, err := load(from)
		if err == nil {
			err = write(res, "", out)
		}
		if err != nil {
			fmt.Fprintln(stderr, "deerchaos:", err)
			return 1
		}
		fmt.Fprintf(stderr, "deerchaos: wrote %s from %s\n", out, from)
		return 0
	}

	plan := chaos.FullPlan()
	if *quick {
		plan = chaos.QuickPlan()
	}
	if *rate != 0 {
		plan.Rate = *rate
	}
	if *duration != 0 {
		plan.Duration = *duration
	}
	if *grace != 0 {
		plan.Grace = *grace
	}
	if err := plan.Validate(); err != nil {
		fmt.Fprintln(stderr, "deerchaos:", err)
		return 2
	}
	for _, bin := range []string{"deerd", "deersim"} {
		if _, err := os.Stat(filepath.Join(l.Bin, bin)); err != nil {
			fmt.Fprintf(stderr, "deerchaos: %s not found in %s: run make build first\n", bin, l.Bin)
			return 1
		}
	}

	ps, err := chaos.StartProcesses(ctx, l, plan)
	if err != nil {
		fmt.Fprintln(stderr, "deerchaos:", err)
		return 1
	}
	opts := ps.Options(plan)
	opts.Log = stderr
	res, err := chaos.Run(ctx, opts)
	ps.Stop()
	if res == nil {
		fmt.Fprintln(stderr, "deerchaos:", err)
		return 1
	}
	res.Machine = bench.ThisMachine()
	res.Machine.Versions["deerd"] = gitVersion()
	res.DeerdConfig = ps.Config
	res.Commands = append([]string{command(plan, *quick, *rate, *duration, *grace)}, indent(ps.Commands)...)
	target := out
	if res.Interrupted { // a partial run does not replace the document
		target = ""
	}
	if werr := write(res, l.Work, target); werr != nil {
		fmt.Fprintln(stderr, "deerchaos:", werr)
		return 1
	}
	if target != "" {
		fmt.Fprintf(stderr, "deerchaos: wrote %s (and %s)\n", out, filepath.Join(l.Work, "results.json"))
	} else {
		fmt.Fprintf(stderr, "deerchaos: interrupted (%v): wrote only %s\n", err, filepath.Join(l.Work, "results.json"))
	}
	fmt.Fprint(stderr, res.Summary())
	if res.Failed() {
		fmt.Fprintln(stderr, "deerchaos: FAILED: requests were lost or answered twice (or the drill was interrupted)")
		return 1
	}
	return 0
}

// command is the make line that reproduces the run.
func command(p chaos.Plan, quick bool, rate float64, duration, grace time.Duration) string {
	c := "make chaos"
	if quick {
		c += " QUICK=1"
	}
	if rate != 0 {
		c += fmt.Sprintf(" RATE=%g", p.Rate)
	}
	if duration != 0 {
		c += " DURATION=" + p.Duration.String()
	}
	if grace != 0 {
		c += " GRACE=" + p.Grace.String()
	}
	return c + "   # builds, starts the two processes below, runs the drill, rewrites this section"
}

func indent(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = "#   " + l
	}
	return out
}

func load(path string) (*chaos.Results, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res chaos.Results
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}

// write saves the raw results in work (unless work is ""), the timeline
// beside the document (in chaos/), and the document with its generated
// section replaced (unless out is "").
func write(res *chaos.Results, work, out string) error {
	if work != "" {
		raw, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, "results.json"), raw, 0o644); err != nil {
			return err
		}
	}
	if out == "" {
		return nil
	}
	plotDir := filepath.Join(filepath.Dir(out), "chaos")
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(plotDir, chaos.TimelineFile), []byte(res.TimelineSVG()), 0o644); err != nil {
		return err
	}
	doc, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(doc) == 0 {
		doc = []byte("# Fault drill\n")
	}
	updated, err := chaos.Splice(string(doc), res.Markdown("chaos/"+chaos.TimelineFile))
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return os.WriteFile(out, []byte(updated), 0o644)
}

// gitVersion names the deerd drilled: the commit, marked when the tree has
// changes.
func gitVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
