package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deer-runtime/deer/internal/load"
)

// Options say where the parts are. A part whose path is empty is left out
// of the run, and the report says so.
type Options struct {
	Bin     string // directory with deerd, deersim and deerload
	Work    string // scratch: configs, logs, the L3 store
	Nginx   string // nginx binary
	Node    string // node binary, and Portkey's build/start-server.js
	Portkey string
	// GoProxy is a command that serves ServeGoProxy given --addr and
	// --upstream (deerbench's own "goproxy" mode); empty leaves it out.
	GoProxy  []string
	Taskset  string
	BasePort int       // the simulator listens on BasePort+1, nginx +2, deerd +3, Portkey +4, go-proxy +5
	Log      io.Writer // progress lines
}

// Target names; the report keeps this order.
const (
	Direct  = "direct"
	Nginx   = "nginx"
	Deerd   = "deerd"
	Portkey = "portkey"
	GoProxy = "go-proxy"
)

// Body is the chat completion every load request sends.
const Body = `{"model":"sim-model","messages":[{"role":"user","content":"Say hello."}]}`

// ProxyCPU runs the proxy under test; LoadCPU runs deerload and deersim.
const (
	ProxyCPU = 0
	LoadCPU  = 1
)

// target is one way to reach the simulator.
type target struct {
	name string
	url  string // of /v1/chat/completions
	proc *Proc  // the proxy; nil for direct calls
}

// runner holds one run's processes and results.
type runner struct {
	opts    Options
	plan    Plan
	pin     Pin
	res     *Results
	sim     *Proc
	targets []target
	client  *http.Client
	headers []string // sent with every request (Portkey's routing headers)
	// nonce makes this run's cacheable bodies new to deerd's cache.
	nonce string
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Log, "deerbench: "+format+"\n", args...)
}

func (r *runner) addr(offset int) string {
	return "127.0.0.1:" + strconv.Itoa(r.opts.BasePort+offset)
}

// Run starts the simulator and the proxies, runs phases A, B and C, stops
// everything and returns what was measured. An error means the run could
// not be made; a target that fails under load is a result, not an error.
func Run(ctx context.Context, opts Options, plan Plan) (*Results, error) {
	logs := filepath.Join(opts.Work, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	r := &runner{
		opts: opts, plan: plan, pin: Pin{Taskset: opts.Taskset},
		client: &http.Client{Transport: tr, Timeout: 60 * time.Second},
		res:    newResults(plan),
		nonce:  strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	r.res.Pinned = opts.Taskset != ""
	defer r.stop()
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	r.res.ClearRefs = ResetPeak(r.sim.Pid())

	sharedBefore, sharedOK := r.sharedAnswers(ctx)
	if err := r.phaseA(ctx); err != nil {
		return nil, fmt.Errorf("phase A: %w", err)
	}
	if err := r.phaseB(ctx); err != nil {
		return nil, fmt.Errorf("phase B: %w", err)
	}
	// Phases A and B send chat completions without "temperature", which
	// deerd neither caches nor coalesces: each must be an upstream call.
	if after, ok := r.sharedAnswers(ctx); sharedOK && ok && after > sharedBefore {
		r.res.Notes = append(r.res.Notes, fmt.Sprintf("deerd answered %.0f requests of Phases A and B from its cache or an identical call in flight (deer_cache_hits_total, deer_coalesced_total): those figures are not all upstream round trips.", after-sharedBefore))
	}
	if err := r.phaseC(ctx); err != nil {
		return nil, fmt.Errorf("phase C: %w", err)
	}
	r.res.Finished = time.Now().UTC()
	return r.res, nil
}

// start brings up the simulator, then each proxy, each pinned.
func (r *runner) start(ctx context.Context) error {
	logs := filepath.Join(r.opts.Work, "logs")
	simAddr := r.addr(1)
	var err error
	r.sim, err = Start(ctx, "deersim", simAddr, logs, nil,
		r.pin.Command(LoadCPU, filepath.Join(r.opts.Bin, "deersim"), "--addr", simAddr, "--latency", "0s"),
		Answers("http://"+simAddr+"/_stats"))
	if err != nil {
		return err
	}
	r.targets = append(r.targets, target{name: Direct, url: "http://" + simAddr + "/v1/chat/completions"})

	if r.opts.Nginx != "" {
		addr := r.addr(2)
		conf, err := writeNginxConf(r.opts.Work, addr, simAddr)
		if err != nil {
			return err
		}
		r.res.NginxConfig = conf
		p, err := Start(ctx, Nginx, addr, logs, nil,
			r.pin.Command(ProxyCPU, r.opts.Nginx, "-p", filepath.Join(r.opts.Work, "nginx"), "-c", "nginx.conf", "-g", "daemon off;"),
			Answers("http://"+addr+"/_stats"))
		if err != nil {
			return err
		}
		r.targets = append(r.targets, target{name: Nginx, url: "http://" + addr + "/v1/chat/completions", proc: p})
	} else {
		r.res.Notes = append(r.res.Notes, "nginx was not found: its columns are empty. `make bench` installs it with apt-get.")
	}

	if len(r.opts.GoProxy) > 0 {
		addr := r.addr(5)
		argv := append(append([]string{}, r.opts.GoProxy...), "--addr", addr, "--upstream", "http://"+simAddr)
		p, err := Start(ctx, GoProxy, addr, logs, nil, r.pin.Command(ProxyCPU, argv...), Answers("http://"+addr+"/_stats"))
		if err != nil {
			return err
		}
		r.targets = append(r.targets, target{name: GoProxy, url: "http://" + addr + "/v1/chat/completions", proc: p})
	}

	addr := r.addr(3)
	conf, path, err := writeDeerdConf(r.opts.Work, addr, simAddr)
	if err != nil {
		return err
	}
	r.res.DeerdConfig = conf
	p, err := Start(ctx, Deerd, addr, logs, nil,
		r.pin.Command(ProxyCPU, filepath.Join(r.opts.Bin, "deerd"), "--config", path),
		Answers("http://"+addr+"/health/live"))
	if err != nil {
		return err
	}
	r.targets = append(r.targets, target{name: Deerd, url: "http://" + addr + "/v1/chat/completions", proc: p})

	if r.opts.Node != "" && r.opts.Portkey != "" {
		addr := r.addr(4)
		p, err := Start(ctx, Portkey, addr, logs, []string{"NODE_ENV=production"},
			r.pin.Command(ProxyCPU, r.opts.Node, r.opts.Portkey, "--port="+strconv.Itoa(r.opts.BasePort+4), "--headless"),
			Answers("http://"+addr+"/"))
		if err != nil {
			return err
		}
		r.targets = append(r.targets, target{name: Portkey, url: "http://" + addr + "/v1/chat/completions", proc: p})
		// Portkey routes by headers; the simulator, nginx and deerd ignore them.
		r.headers = []string{"Authorization: Bearer sk-bench", "x-portkey-provider: openai",
			"x-portkey-custom-host: http://" + simAddr + "/v1"}
	} else {
		r.res.Notes = append(r.res.Notes, "Portkey was not run: `make bench` installs it when npm is present.")
	}
	for _, t := range r.targets {
		r.res.Targets = append(r.res.Targets, t.name)
	}
	r.logf("started %s", strings.Join(r.res.Targets, ", "))
	return nil
}

func (r *runner) stop() {
	for i := len(r.targets) - 1; i >= 0; i-- {
		r.targets[i].proc.Stop()
	}
	r.sim.Stop()
}

// deerload runs deerload pinned to the load CPU with --json and decodes its
// result into out. The command line is recorded for the report.
func (r *runner) deerload(ctx context.Context, out any, args ...string) error {
	for _, h := range r.headers {
		args = append(args, "--header", h)
	}
	args = append(args, "--json")
	argv := r.pin.Command(LoadCPU, append([]string{filepath.Join(r.opts.Bin, "deerload")}, args...)...)
	r.res.command(argv)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("deerload %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return json.Unmarshal(stdout.Bytes(), out)
}

// control changes the simulator's knobs.
func (r *runner) control(ctx context.Context, knobs string) error {
	_, err := r.post(ctx, "http://"+r.sim.Addr+"/_control", knobs)
	return err
}

// simStats resets (reset true) or reads the simulator's counters.
func (r *runner) simStats(ctx context.Context, reset bool) (simStats, error) {
	var st simStats
	var body []byte
	var err error
	if reset {
		body, err = r.post(ctx, "http://"+r.sim.Addr+"/_stats/reset", "")
	} else {
		body, err = r.get(ctx, "http://"+r.sim.Addr+"/_stats", "")
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(body, &st)
}

// simStats is the part of deersim's GET /_stats the bench reads.
type simStats struct {
	Requests             map[string]int64 `json:"requests"`
	InFlight             int64            `json:"in_flight"`
	EmbeddingCalls       int64            `json:"embedding_calls"`
	EmbeddingInputs      int64            `json:"embedding_inputs"`
	EmbeddingInputCounts []int            `json:"embedding_input_counts"`
	RetryAfter           struct {
		Asked     int64   `json:"asked"`
		Retried   int64   `json:"retried"`
		Early     int64   `json:"early"`
		MinWaitMS float64 `json:"min_wait_ms"`
	} `json:"retry_after"`
}

func (r *runner) post(ctx context.Context, url, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return r.do(req)
}

func (r *runner) get(ctx context.Context, url, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return r.do(req)
}

func (r *runner) do(req *http.Request) ([]byte, error) {
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// phaseA is sequential added latency: the targets in turn, one request at
// a time, the simulator answering at once. Portkey gets rounds of its own
// (against direct calls): its Node.js process goes on working on the proxy
// CPU after each answer, and in shared rounds that slowed the next calls to
// the other proxies (deerd's added latency went from about 280 to 360–400
// µs with Portkey in the rotation).
func (r *runner) phaseA(ctx context.Context) error {
	r.logf("phase A: sequential added latency (%d warm-up, %d rounds of %d)", r.plan.WarmupRequests, r.plan.Rounds, r.plan.PerRound)
	rounds := func(targets []target) (load.RoundsResult, error) {
		args := []string{"rounds", "--body", Body, "--warmup", strconv.Itoa(r.plan.WarmupRequests),
			"--rounds", strconv.Itoa(r.plan.Rounds), "--per-round", strconv.Itoa(r.plan.PerRound), "--timeout", "10s"}
		for _, t := range targets {
			args = append(args, "--url", t.url)
		}
		var res load.RoundsResult
		return res, r.deerload(ctx, &res, args...)
	}
	var shared, alone []target
	for _, t := range r.targets {
		if t.name == Portkey {
			alone = append(alone, t)
		} else {
			shared = append(shared, t)
		}
	}
	res, err := rounds(shared)
	if err != nil {
		return err
	}
	for _, t := range alone { // after the shared targets, as in r.targets
		own, err := rounds([]target{r.targets[0], t})
		if err != nil {
			return err
		}
		appendAlone(&res, own)
		r.res.PhaseAAlone = append(r.res.PhaseAAlone, t.name)
	}
	r.res.PhaseA = &res
	return nil
}

// appendAlone adds the second target of own (rounds of direct calls and
// one target) to res, as if it had been one more target of res.
func appendAlone(res *load.RoundsResult, own load.RoundsResult) {
	res.Targets = append(res.Targets, own.Targets[1])
	res.Diffs = append(res.Diffs, own.Diffs[0])
	res.ElapsedS += own.ElapsedS
}

// phaseB is open-loop load at rising rates, targets taking turns at each
// rate so that drift of the shared machine touches all of them alike.
func (r *runner) phaseB(ctx context.Context) error {
	if err := r.control(ctx, fmt.Sprintf(`{"latency": %q}`, r.plan.SimLatency)); err != nil {
		return err
	}
	gaveUp := map[string]float64{}
	for _, rate := range r.plan.Rates {
		for _, t := range r.targets {
			step := Step{Target: t.name, Rate: rate, OverheadP50US: math.NaN(), OverheadP99US: math.NaN()}
			if at, ok := gaveUp[t.name]; ok {
				step.Skipped = fmt.Sprintf("not run: below %g%% success at %g req/s", r.plan.GiveUpPct, at)
				r.res.PhaseB = append(r.res.PhaseB, step)
				continue
			}
			r.logf("phase B: %s at %g req/s", t.name, rate)
			if err := r.loadStep(ctx, t, rate, &step); err != nil {
				return err
			}
			if step.Result.SuccessPct < r.plan.GiveUpPct {
				gaveUp[t.name] = rate
			}
			r.res.PhaseB = append(r.res.PhaseB, step)
			if err := r.settle(ctx); err != nil {
				return err
			}
		}
	}
	// Portkey has no part in Phase C; stopped, it cannot send a backlog.
	for i, t := range r.targets {
		if t.name == Portkey {
			t.proc.Stop()
			r.targets = slices.Delete(r.targets, i, i+1)
			break
		}
	}
	return r.control(ctx, `{"latency": "0s"}`)
}

// settle waits until the simulator has nothing in flight and every proxy
// is idle (under 10% of a CPU), for at most a minute: a proxy that fell
// behind goes on sending its backlog after the client gave up, which would
// load the machine and the simulator during the next step.
func (r *runner) settle(ctx context.Context) error {
	const poll = 250 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	prev := map[string]time.Duration{}
	for quiet := 0; quiet < 2; {
		if time.Now().After(deadline) {
			r.logf("still busy after a minute; going on")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		st, err := r.simStats(ctx, false)
		if err != nil {
			return err
		}
		idle := st.InFlight == 0
		for _, t := range r.targets {
			if t.proc == nil {
				continue
			}
			u, err := TreeUsage(t.proc.Pid())
			if err != nil {
				return err
			}
			if last, ok := prev[t.name]; !ok || u.CPU-last > poll/10 {
				idle = false
			}
			prev[t.name] = u.CPU
		}
		if idle {
			quiet++
		} else {
			quiet = 0
		}
	}
	return nil
}

// loadStep warms t up at rate, then measures a step: deerload's result,
// the proxy's CPU time and peak RSS over the step, and for deerd the
// deer_overhead_seconds observations the step added.
func (r *runner) loadStep(ctx context.Context, t target, rate float64, step *Step) error {
	rateArg := strconv.FormatFloat(rate, 'f', -1, 64)
	var warm load.Result
	if err := r.deerload(ctx, &warm, "rate", "--url", t.url, "--body", Body, "--rate", rateArg,
		"--duration", r.plan.StepWarmup.String(), "--timeout", "10s"); err != nil {
		return err
	}
	var before Usage
	var overhead Buckets
	if t.proc != nil {
		ResetPeak(t.proc.Pid())
		u, err := TreeUsage(t.proc.Pid())
		if err != nil {
			return err
		}
		before = u
	}
	if t.name == Deerd {
		overhead = r.overhead(ctx)
	}
	if err := r.deerload(ctx, &step.Result, "rate", "--url", t.url, "--body", Body, "--rate", rateArg,
		"--duration", r.plan.Step.String(), "--timeout", "10s"); err != nil {
		return err
	}
	if t.proc != nil {
		after, err := TreeUsage(t.proc.Pid())
		if err != nil {
			return err
		}
		step.CPU = after.CPU - before.CPU
		step.PeakRSS = after.PeakRSS
	}
	if t.name == Deerd && overhead != nil {
		if d := r.overhead(ctx).Sub(overhead); d.Count() > 0 {
			step.OverheadP50US = d.Quantile(0.5) * 1e6
			step.OverheadP99US = d.Quantile(0.99) * 1e6
		}
	}
	return nil
}

// sharedAnswers reads how many tasks deerd answered without an upstream
// call of their own: deer_cache_hits_total (all tiers) plus
// deer_coalesced_total. ok is false when /metrics does not answer.
func (r *runner) sharedAnswers(ctx context.Context) (float64, bool) {
	t, ok := r.target(Deerd)
	if !ok {
		return 0, false
	}
	b, err := r.get(ctx, "http://"+t.proc.Addr+"/metrics", "text/plain")
	if err != nil {
		r.logf("reading deerd /metrics: %v", err)
		return 0, false
	}
	hits, _ := ParseCounter(string(b), "deer_cache_hits_total") // no series yet: none yet
	coalesced, _ := ParseCounter(string(b), "deer_coalesced_total")
	return hits + coalesced, true
}

// overhead reads deerd's deer_overhead_seconds histogram; nil if it cannot.
func (r *runner) overhead(ctx context.Context) Buckets {
	for _, t := range r.targets {
		if t.name != Deerd {
			continue
		}
		b, err := r.get(ctx, "http://"+t.proc.Addr+"/metrics", "text/plain")
		if err != nil {
			r.logf("reading deerd /metrics: %v", err)
			return nil
		}
		return ParseHistogram(string(b), "deer_overhead_seconds")
	}
	return nil
}

func (r *runner) target(name string) (target, bool) {
	for _, t := range r.targets {
		if t.name == name {
			return t, true
		}
	}
	return target{}, false
}
