package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/deer-runtime/deer/internal/load"
)

// config is the parsed command line.
type config struct {
	mode                     string // rate or rounds
	targets                  []load.Target
	rate                     float64
	duration, timeout        time.Duration
	maxInFlight              int
	rounds, perRound, warmup int
	json                     bool
}

// strs is a repeatable string flag.
type strs []string

func (s *strs) String() string     { return strings.Join(*s, ", ") }
func (s *strs) Set(v string) error { *s = append(*s, v); return nil }

const usage = `usage:
  deerload rate --url URL [--method M] [--body STRING|@file] [--header 'K: V']...
                --rate 200 --duration 15s [--max-inflight 10000] [--timeout 30s] [--json]
  deerload rounds --url A --url B [...] [--method M] [--body STRING|@file] [--header 'K: V']...
                [--rounds 7] [--per-round 25] [--warmup 15] [--timeout 30s] [--json]`

// parse reads the mode and its flags; flag problems name the flag.
func parse(args []string, stderr io.Writer) (config, error) {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return config{}, errors.New("missing mode: rate or rounds")
	}
	cfg := config{mode: args[0]}
	switch cfg.mode {
	case "rate", "rounds":
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, usage)
		return config{}, flag.ErrHelp
	default:
		fmt.Fprintln(stderr, usage)
		return config{}, fmt.Errorf("unknown mode %q: want rate or rounds", cfg.mode)
	}
	fs := flag.NewFlagSet("deerload "+cfg.mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var urls, headers strs
	var method, body string
	fs.Var(&urls, "url", "target URL (rounds: repeat, the first is the base)")
	fs.Var(&headers, "header", "request header 'Key: Value' (repeatable)")
	fs.StringVar(&method, "method", "", "HTTP method (default POST with a body, else GET)")
	fs.StringVar(&body, "body", "", "request body, or @file to read it from a file")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "timeout of each request (0: none)")
	fs.BoolVar(&cfg.json, "json", false, "print the result as JSON")
	if cfg.mode == "rate" {
		fs.Float64Var(&cfg.rate, "rate", 0, "requests per second (required)")
		fs.DurationVar(&cfg.duration, "duration", 0, "how long to send (required)")
		fs.IntVar(&cfg.maxInFlight, "max-inflight", load.DefaultMaxInFlight, "requests outstanding at most; beyond, requests due are dropped")
	} else {
		fs.IntVar(&cfg.rounds, "rounds", 7, "number of recorded rounds")
		fs.IntVar(&cfg.perRound, "per-round", 25, "iterations per round")
		fs.IntVar(&cfg.warmup, "warmup", 15, "unrecorded warm-up iterations")
		cfg.maxInFlight = 1
	}
	if err := fs.Parse(args[1:]); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	h := http.Header{}
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return config{}, fmt.Errorf("--header %q: want 'Key: Value'", kv)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	var data []byte
	if path, ok := strings.CutPrefix(body, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return config{}, fmt.Errorf("--body: %v", err)
		}
		data = b
	} else {
		data = []byte(body)
	}
	if method == "" {
		method = http.MethodGet
		if len(data) > 0 {
			method = http.MethodPost
		}
	}
	switch {
	case len(urls) == 0:
		return config{}, errors.New("--url is required")
	case cfg.mode == "rate" && len(urls) > 1:
		return config{}, errors.New("--url: rate takes one URL")
	case cfg.timeout < 0:
		return config{}, fmt.Errorf("--timeout must be >= 0, got %s", cfg.timeout)
	}
	for _, u := range urls {
		t := load.Target{Method: method, URL: u, Header: h, Body: data}
		if err := t.Validate(); err != nil {
			return config{}, fmt.Errorf("--%v", err) // "--url …" or "--method …"
		}
		cfg.targets = append(cfg.targets, t)
	}
	if cfg.mode == "rate" {
		switch {
		case !(cfg.rate > 0) || cfg.rate > 1e7:
			return config{}, fmt.Errorf("--rate must be a positive number of requests per second, got %v", cfg.rate)
		case cfg.duration <= 0:
			return config{}, fmt.Errorf("--duration must be positive (e.g. 15s), got %s", cfg.duration)
		case cfg.maxInFlight < 1:
			return config{}, fmt.Errorf("--max-inflight must be >= 1, got %d", cfg.maxInFlight)
		}
		return cfg, nil
	}
	switch {
	case cfg.rounds < 1:
		return config{}, fmt.Errorf("--rounds must be >= 1, got %d", cfg.rounds)
	case cfg.perRound < 1:
		return config{}, fmt.Errorf("--per-round must be >= 1, got %d", cfg.perRound)
	case cfg.warmup < 0:
		return config{}, fmt.Errorf("--warmup must be >= 0, got %d", cfg.warmup)
	}
	return cfg, nil
}
