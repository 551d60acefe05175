// Package clusterdrill is `make cluster-demo` (cmd/deercluster) and its
// test: a real redis-server, one deersim of limited capacity and three
// deerd processes sharing that Redis, driven open-loop, while one node is
// SIGKILLed and then Redis itself is killed and restarted. It measures what
// issue 13 asks (the cluster's accepted rate upstream against the
// capacity, the share of 429s, Redis round trips per upstream call, lost
// answers, how fast the survivors see a node go and Redis go and come
// back) and reports each against its goal, met or missed.
package clusterdrill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config is one drill.
type Config struct {
	Bin      string  // directory with deerd and deersim
	Redis    string  // redis-server binary
	Work     string  // scratch directory
	Capacity float64 // deersim's capacity, req/s (the issue: 200)
	Rate     float64 // offered to each node, req/s (the issue: 300)
	Warm     time.Duration
	Measure  time.Duration // each measured window
	Outage   time.Duration // how long Redis stays down
	Log      io.Writer     // progress lines; nil: none
	// The nodes' rate_limit of the upstream: the cluster's shared rate
	// starts at InitialRate and adapts up to MaxRate.
	InitialRate, MaxRate float64
}

// Issue returns the issue's drill: C = 200, 3 × 300 req/s. The measured
// windows are 20 s because deersim's capacity is a bucket holding one
// second's worth: a window of W seconds can see up to C/W more accepted
// than C (5% at 20 s) from tokens saved up before it.
func Issue(bin, redis, work string) Config {
	return Config{Bin: bin, Redis: redis, Work: work, Capacity: 200, Rate: 300,
		Warm: 10 * time.Second, Measure: 20 * time.Second, Outage: 6 * time.Second,
		InitialRate: 50, MaxRate: 1000}
}

// RoundTripsDrill is the setting of the goal on Redis round trips: 1,000
// req/s per node, all of which the upstream accepts (no capacity), under a
// shared rate of 3,000 req/s, so that every call is leased.
func RoundTripsDrill(bin, redis, work string) Config {
	return Config{Bin: bin, Redis: redis, Work: work, Capacity: 0, Rate: 1000,
		Warm: 5 * time.Second, Measure: 10 * time.Second, InitialRate: 3000, MaxRate: 3000}
}

// Check is one measured property against its goal.
type Check struct {
	Name, Measured, Goal string
	Met                  bool
}

// Result is the drill's outcome.
type Result struct {
	Checks []Check
	// The raw numbers behind the checks.
	Accepted, Throttled   float64 // upstream answers/s over the first window
	AfterKill             float64 // upstream 200s/s with two nodes
	DuringOutage          float64 // upstream 200s/s with Redis down
	RoundTripsPerCall     float64
	Lost                  int64    // requests to surviving nodes without an HTTP answer
	LostErrors            []string // the first few of their errors, with when they came
	NoticedKill           time.Duration
	NoticedOutage, Rejoin time.Duration
	// The breaker phase: how long after node 1's breaker opened nodes 2
	// and 3 showed it open, and after the upstream recovered, how long
	// from the first call into half_open until all three were closed, and
	// how many of the three calls sent then (one to each node, at once)
	// reached the upstream while it was half_open.
	BreakerSeen, BreakerClosed time.Duration
	Probes                     int64
}

// Met reports whether every check was met.
func (r *Result) Met() bool {
	for _, c := range r.Checks {
		if !c.Met {
			return false
		}
	}
	return true
}

// Markdown renders the checks as a table.
func (r *Result) Markdown() string {
	var b strings.Builder
	b.WriteString("| check | measured | goal | |\n|---|---|---|---|\n")
	for _, c := range r.Checks {
		met := "met"
		if !c.Met {
			met = "**missed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.Name, c.Measured, c.Goal, met)
	}
	return b.String()
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

type drill struct {
	cfg       Config
	ports     []int // redis, deersim, node 1..3
	procs     map[string]*proc
	mu        sync.Mutex
	client    *http.Client
	counts    [3]nodeCounts
	stopLoad  chan struct{}
	loadWG    sync.WaitGroup
	deadNodes [3]atomic.Bool
	started   time.Time
	errs      []string // guarded by mu: the first few client errors of surviving nodes
}

type nodeCounts struct {
	sent, ok, throttled, other, noAnswer atomic.Int64
}

func (d *drill) logf(format string, args ...any) {
	if d.cfg.Log != nil {
		fmt.Fprintf(d.cfg.Log, "cluster-demo: "+format+"\n", args...)
	}
}

// Run runs the drill; processes are stopped whatever happens.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	d, err := up(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer d.stopAll()
	res := &Result{}
	if err := d.breakers(ctx, res); err != nil {
		return nil, err
	}
	d.logf("3 nodes, deersim capacity %.0f req/s, offering %.0f req/s to each node", cfg.Capacity, cfg.Rate)
	defer d.offer()()

	// 1. Convergence, then one measured window.
	w, err := d.window(ctx)
	if err != nil {
		return nil, err
	}
	res.Accepted, res.Throttled = per(w.from, w.to, 200), per(w.from, w.to, 429)
	res.RoundTripsPerCall = w.roundTrips(200, 429)
	d.logf("accepted upstream %.1f req/s, 429 %.1f req/s, %.3f redis calls per upstream call", res.Accepted, res.Throttled, res.RoundTripsPerCall)

	// 2. SIGKILL node 3.
	// Marked dead first: its requests cut by the kill are not the
	// survivors' and are not counted.
	d.deadNodes[2].Store(true)
	d.kill("node3")
	killed := time.Now()
	res.NoticedKill = d.waitUntil(ctx, 10*time.Second, func() bool {
		h, ok := d.health(0)
		return ok && h.Cluster.NodesAlive == 2
	}, killed)
	if !sleep(ctx, 2*time.Second) {
		return nil, ctx.Err()
	}
	s2 := d.simStats()
	if !sleep(ctx, cfg.Measure) {
		return nil, ctx.Err()
	}
	s3 := d.simStats()
	res.AfterKill = per(s2, s3, 200)
	d.logf("node 3 killed: seen gone after %s; two nodes get %.1f req/s upstream", res.NoticedKill.Round(time.Millisecond), res.AfterKill)

	// 3. Kill Redis, then bring it back.
	d.kill("redis")
	down := time.Now()
	res.NoticedOutage = d.waitUntil(ctx, 10*time.Second, func() bool {
		h, ok := d.health(0)
		return ok && h.Status != "healthy" && !h.Cluster.RedisUp
	}, down)
	s4 := d.simStats()
	if !sleep(ctx, cfg.Outage) {
		return nil, ctx.Err()
	}
	s5 := d.simStats()
	res.DuringOutage = per(s4, s5, 200)
	if err := d.startRedis(); err != nil {
		return nil, err
	}
	back := time.Now()
	// Rejoined: both survivors heartbeat again and their limiters lease
	// from Redis again. (/health's overall status stays degraded while the
	// offered load keeps the routers' queues full: that is the overload,
	// not Redis.)
	res.Rejoin = d.waitUntil(ctx, 15*time.Second, func() bool {
		return d.rejoined(0) && d.rejoined(1)
	}, back)
	d.logf("redis killed: seen after %s, %.1f req/s upstream meanwhile; back: rejoined after %s",
		res.NoticedOutage.Round(time.Millisecond), res.DuringOutage, res.Rejoin.Round(time.Millisecond))
	d.stopLoadNow()
	for i := range 2 {
		res.Lost += d.counts[i].noAnswer.Load()
	}
	d.mu.Lock()
	res.LostErrors = slices.Clone(d.errs)
	d.mu.Unlock()
	for _, e := range res.LostErrors {
		d.logf("no answer: %s", e)
	}
	var sent int64
	for i := range 2 {
		sent += d.counts[i].sent.Load()
	}
	res.Checks = d.checks(res, sent)
	return res, nil
}

// breakers is the drill's first phase, before any load: the upstream
// fails every call; node 1 alone is sent calls until its breaker opens;
// nodes 2 and 3 must show it open without a call of their own. Then the
// upstream recovers; once the opening's 2 s have passed, one call goes to
// each node at once: one of them is the cluster's probe, the other two are
// refused (they are retried later), and the probe's success closes the
// breaker on all three.
func (d *drill) breakers(ctx context.Context, res *Result) error {
	if err := d.simControl(`{"error_rate": 1}`); err != nil {
		return err
	}
	var opened time.Time
	for deadline := time.Now().Add(15 * time.Second); ; {
		if time.Now().After(deadline) {
			return fmt.Errorf("breaker phase: node 1's breaker did not open (log: %s)", d.logPath("node1"))
		}
		d.chat(0)
		if d.breakerState(0) == "open" {
			opened = time.Now()
			break
		}
	}
	res.BreakerSeen = d.waitUntil(ctx, 5*time.Second, func() bool {
		return d.breakerState(1) == "open" && d.breakerState(2) == "open"
	}, opened)
	if err := d.simControl(`{"error_rate": 0}`); err != nil {
		return err
	}
	// Past the reopen time (2 s from the opening) every node is half_open.
	if !sleep(ctx, time.Until(opened.Add(2500*time.Millisecond))) {
		return ctx.Err()
	}
	before := d.simStats().status(200)
	probe := time.Now()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.chat(i)
		}()
	}
	res.BreakerClosed = d.waitUntil(ctx, 5*time.Second, func() bool {
		return d.breakerState(0) == "closed" && d.breakerState(1) == "closed" && d.breakerState(2) == "closed"
	}, probe)
	// Counted as soon as all are closed: the two refused calls are retried
	// after their backoff, by when the breaker is closed and they go.
	res.Probes = d.simStats().status(200) - before
	wg.Wait()
	d.logf("breaker: opened on node 1, open on nodes 2 and 3 after %s; %d of 3 calls into half_open reached the upstream; closed everywhere after %s",
		res.BreakerSeen.Round(time.Millisecond), res.Probes, res.BreakerClosed.Round(time.Millisecond))
	return nil
}

// chat sends one chat to node i and waits for its answer, whatever it is.
func (d *drill) chat(i int) {
	body := `{"model":"sim-model","messages":[{"role":"user","content":"breaker phase"}]}`
	resp, err := d.client.Post(d.url(2+i)+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func (d *drill) simControl(knobs string) error {
	resp, err := d.client.Post(d.url(1)+"/_control", "application/json", strings.NewReader(knobs))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("deersim /_control %s: %s", knobs, resp.Status)
	}
	return nil
}

// answerWithin is how long the drill's client waits for an answer.
const answerWithin = 30 * time.Second

// offer starts the open-loop load on the three nodes; the returned func
// stops it.
func (d *drill) offer() (stop func()) {
	for i := range 3 {
		d.loadWG.Add(1)
		go d.load(i)
	}
	return d.stopLoadNow
}

// window is one measured window: deersim's counts at its two ends, and the
// Redis round trips of the nodes' limiters meanwhile.
type window struct {
	from, to simStats
	calls    int64
}

// window lets the load converge for cfg.Warm, then measures cfg.Measure.
// Its length is the time between the two readings of deersim's counts, by
// deersim's clock; Redis calls are read just outside it, which counts a few
// calls more.
func (d *drill) window(ctx context.Context) (window, error) {
	if !sleep(ctx, d.cfg.Warm) {
		return window{}, ctx.Err()
	}
	calls := d.redisCalls()
	w := window{from: d.simStats()}
	if !sleep(ctx, d.cfg.Measure) {
		return window{}, ctx.Err()
	}
	w.to = d.simStats()
	w.calls = d.redisCalls() - calls
	return w, nil
}

// roundTrips is Redis round trips per upstream answer of the codes given.
func (w window) roundTrips(codes ...int) float64 {
	var n int64
	for _, c := range codes {
		n += w.to.status(c) - w.from.status(c)
	}
	return float64(w.calls) / float64(max(1, n))
}

// up starts Redis, deersim and the three nodes, and waits for them to
// answer. The caller stops them (stopAll), also on error.
func up(ctx context.Context, cfg Config) (d *drill, err error) {
	// A request counts as unanswered only if no answer came within
	// answerWithin: an answer that is merely slow (a node starved of CPU
	// beside make test's other packages) is still an answer.
	d = &drill{cfg: cfg, procs: map[string]*proc{}, stopLoad: make(chan struct{}), started: time.Now(),
		client: &http.Client{Timeout: answerWithin, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}}}
	defer func() {
		if err != nil {
			d.stopAll()
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return d, err
	}
	d.ports = ports
	if err := os.MkdirAll(cfg.Work, 0o755); err != nil {
		return d, err
	}
	if err := d.startRedis(); err != nil {
		return d, err
	}
	if err := d.start("deersim", filepath.Join(cfg.Bin, "deersim"), nil, "--addr", d.addr(1),
		"--capacity", strconv.FormatFloat(cfg.Capacity, 'f', -1, 64), "--latency", "20ms"); err != nil {
		return d, err
	}
	for i := range 3 {
		if err := d.startNode(i); err != nil {
			return d, err
		}
	}
	for i := range 3 {
		if err := d.waitHTTP(ctx, d.url(2+i)+"/health", 15*time.Second); err != nil {
			return d, fmt.Errorf("node %d: %w (log: %s)", i+1, err, d.logPath(fmt.Sprintf("node%d", i+1)))
		}
	}
	if err := d.waitHTTP(ctx, d.url(1)+"/_stats", 10*time.Second); err != nil {
		return d, fmt.Errorf("deersim: %w", err)
	}
	return d, nil
}

// RoundTrips measures Redis round trips per upstream call with every call
// leased from the shared budget and none refused upstream (cfg as
// RoundTripsDrill gives it): the issue's goal is ≤ 0.05 at 1,000 req/s
// per node.
func RoundTrips(ctx context.Context, cfg Config) (*Result, error) {
	d, err := up(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer d.stopAll()
	d.logf("3 nodes, deersim without a capacity, offering %.0f req/s to each node, shared rate %.0f req/s", cfg.Rate, cfg.MaxRate)
	defer d.offer()()
	w, err := d.window(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{Accepted: per(w.from, w.to, 200), RoundTripsPerCall: w.roundTrips(200)}
	perNode := res.Accepted / 3
	d.logf("upstream %.1f req/s (%.1f per node), %.4f redis calls per upstream call", res.Accepted, perNode, res.RoundTripsPerCall)
	for i := range 3 {
		c := &d.counts[i]
		d.logf("node %d: sent %d: 200 %d, 429 %d, other %d, no answer %d", i+1,
			c.sent.Load(), c.ok.Load(), c.throttled.Load(), c.other.Load(), c.noAnswer.Load())
	}
	res.Checks = []Check{
		{"upstream calls per node", fmt.Sprintf("%.0f req/s", perNode), fmt.Sprintf("≥ 90%% of the %.0f offered", cfg.Rate), perNode >= 0.9*cfg.Rate},
		{"Redis round trips per upstream call", fmt.Sprintf("%.4f", res.RoundTripsPerCall), "≤ 0.05", res.RoundTripsPerCall <= 0.05},
	}
	return res, nil
}

func (d *drill) checks(r *Result, sentSurvivors int64) []Check {
	c := d.cfg.Capacity
	within := func(v, lo, hi float64) bool { return v >= lo && v <= hi }
	share := r.Throttled / max(r.Accepted+r.Throttled, 1)
	never := func(dur time.Duration) string {
		if dur < 0 {
			return "never (within the wait)"
		}
		return dur.Round(10 * time.Millisecond).String()
	}
	return []Check{
		{"cluster's accepted rate upstream, 3 nodes", fmt.Sprintf("%.1f req/s (%+.1f%% of C = %.0f)", r.Accepted, 100*(r.Accepted/c-1), c),
			"within ±5% of C", within(r.Accepted, 0.95*c, 1.05*c)},
		{"429s from the upstream", fmt.Sprintf("%.2f%% of upstream calls", 100*share), "≤ 2%", share <= 0.02},
		{"breaker opened on node 1: open on nodes 2 and 3", never(r.BreakerSeen), "≤ 1 s", r.BreakerSeen >= 0 && r.BreakerSeen <= time.Second},
		{"upstream recovered: calls into half_open from all three nodes at once reaching it", fmt.Sprintf("%d of 3", r.Probes), "1 (one probe cluster-wide)", r.Probes == 1},
		{"the probe's success: closed on all three", never(r.BreakerClosed), "≤ 1 s", r.BreakerClosed >= 0 && r.BreakerClosed <= time.Second},
		{"node 3 SIGKILLed: seen gone by node 1", never(r.NoticedKill), "≤ 5 s (3 s without a heartbeat, beats every 1 s)", r.NoticedKill >= 0 && r.NoticedKill <= 5*time.Second},
		{"two nodes take its share", fmt.Sprintf("%.1f req/s upstream (%+.1f%% of C), measured from 2 s after the kill", r.AfterKill, 100*(r.AfterKill/c-1)),
			"within ±5% of C", within(r.AfterKill, 0.95*c, 1.05*c)},
		{"requests to surviving nodes without an answer", fmt.Sprintf("%d of %d", r.Lost, sentSurvivors), "0", r.Lost == 0},
		{"Redis killed: /health shows redis_up false, not healthy", never(r.NoticedOutage), "≤ 2 s", r.NoticedOutage >= 0 && r.NoticedOutage <= 2*time.Second},
		{"serving with Redis down", fmt.Sprintf("%.1f req/s upstream (local limits: rate / nodes alive)", r.DuringOutage),
			"keeps serving, never unlimited (≤ 1.1 × C)", r.DuringOutage > 0 && r.DuringOutage <= 1.1*c},
		{"Redis back: both survivors heartbeat and lease from it again", never(r.Rejoin), "≤ 5 s", r.Rejoin >= 0 && r.Rejoin <= 5*time.Second},
	}
}

// load offers cfg.Rate req/s to node i, open loop, until stopLoad.
func (d *drill) load(i int) {
	defer d.loadWG.Done()
	body := `{"model":"sim-model","messages":[{"role":"user","content":"hello from the cluster drill"}]}`
	url := d.url(2+i) + "/v1/chat/completions"
	interval := time.Duration(float64(time.Second) / d.cfg.Rate)
	next := time.Now()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		next = next.Add(interval)
		select {
		case <-d.stopLoad:
			return
		case <-time.After(time.Until(next)):
		}
		if d.deadNodes[i].Load() {
			continue
		}
		d.counts[i].sent.Add(1)
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			resp, err := d.client.Post(url, "application/json", strings.NewReader(body))
			c := &d.counts[i]
			if err != nil {
				if !d.deadNodes[i].Load() {
					c.noAnswer.Add(1)
					d.mu.Lock()
					if len(d.errs) < 5 {
						d.errs = append(d.errs, fmt.Sprintf("node %d at %s: %v", i+1, time.Since(d.started).Round(time.Millisecond), err))
					}
					d.mu.Unlock()
				}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				c.ok.Add(1)
			case 429:
				c.throttled.Add(1)
			default:
				c.other.Add(1)
			}
		}()
	}
}

func (d *drill) stopLoadNow() {
	select {
	case <-d.stopLoad:
	default:
		close(d.stopLoad)
	}
	d.loadWG.Wait()
}

type simStats struct {
	Statuses map[string]int64 `json:"statuses"`
	Now      time.Time        `json:"now"` // deersim's clock when it read the counts
}

// per is the rate of status code between readings a and b, by deersim's
// clock: a reading that took long to come back does not move the window.
func per(a, b simStats, code int) float64 {
	dt := b.Now.Sub(a.Now).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(b.status(code)-a.status(code)) / dt
}

func (s simStats) status(code int) int64 { return s.Statuses[strconv.Itoa(code)] }

func (d *drill) simStats() simStats {
	var s simStats
	_ = d.getJSON(d.url(1)+"/_stats", &s)
	return s
}

type health struct {
	Status  string `json:"status"`
	Cluster struct {
		RedisUp    bool `json:"redis_up"`
		NodesAlive int  `json:"nodes_alive"`
	} `json:"cluster"`
}

// health reads node's /health; false when it did not answer (which says
// nothing of Redis or the members).
func (d *drill) health(node int) (health, bool) {
	var h health
	return h, d.getJSON(d.url(2+node)+"/health", &h) == nil
}

// nodeMetrics is what the drill reads of a node's GET /metrics.
type nodeMetrics struct {
	Cluster struct {
		RedisUp    bool `json:"redis_up"`
		NodesAlive int  `json:"nodes_alive"`
		Limiters   map[string]struct {
			Fallback   bool  `json:"fallback"`
			RedisCalls int64 `json:"redis_calls"`
		} `json:"limiters"`
	} `json:"cluster"`
	AdvancedOptimizations struct {
		ErrorRecovery struct {
			State string `json:"circuit_breaker_state"` // deersim's one endpoint
		} `json:"error_recovery"`
	} `json:"advanced_optimizations"`
}

// metrics reads node i's /metrics; false when it did not answer.
func (d *drill) metrics(i int) (nodeMetrics, bool) {
	var m nodeMetrics
	return m, d.getJSON(d.url(2+i)+"/metrics", &m) == nil
}

// breakerState is node i's breaker of deersim: closed, open, half_open, or
// "" when the node did not answer.
func (d *drill) breakerState(i int) string {
	m, _ := d.metrics(i)
	return m.AdvancedOptimizations.ErrorRecovery.State
}

// rejoined reports whether node i sees Redis, both survivors, and leases
// from the shared budget (its limiter is out of its fallback).
func (d *drill) rejoined(i int) bool {
	m, ok := d.metrics(i)
	if !ok || !m.Cluster.RedisUp || m.Cluster.NodesAlive != 2 {
		return false
	}
	l, ok := m.Cluster.Limiters["sim"]
	return ok && !l.Fallback
}

// redisCalls sums the limiters' lease round trips over the live nodes.
func (d *drill) redisCalls() int64 {
	var total int64
	for i := range 3 {
		if d.deadNodes[i].Load() {
			continue
		}
		if m, ok := d.metrics(i); ok {
			total += m.Cluster.Limiters["sim"].RedisCalls
		}
	}
	return total
}

func (d *drill) getJSON(url string, v any) error {
	resp, err := d.client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitUntil polls cond every 50 ms for at most limit and returns how long
// after since it held, or -1.
func (d *drill) waitUntil(ctx context.Context, limit time.Duration, cond func() bool, since time.Time) time.Duration {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return time.Since(since)
		}
		if !sleep(ctx, 50*time.Millisecond) {
			break
		}
	}
	return -1
}

func (d *drill) waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := d.client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v", url, limit, err)
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (d *drill) addr(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.ports[i])) }
func (d *drill) url(i int) string  { return "http://" + d.addr(i) }
func (d *drill) logPath(name string) string {
	return filepath.Join(d.cfg.Work, name+".log")
}

func (d *drill) startRedis() error {
	if err := d.start("redis", d.cfg.Redis, nil, "--port", strconv.Itoa(d.ports[0]), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", d.cfg.Work, "--protected-mode", "no"); err != nil {
		return err
	}
	return d.waitTCP(d.addr(0), 10*time.Second)
}

func (d *drill) waitTCP(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen within %s", addr, limit)
		}
		time.Sleep(20 * time.Millisecond) // an external process starting: nothing to wait on
	}
}

func (d *drill) startNode(i int) error {
	name := fmt.Sprintf("node%d", i+1)
	cfgPath := filepath.Join(d.cfg.Work, name+".toml")
	toml := fmt.Sprintf(`[server]
addr = %q
[monitoring]
detailed_logging = false
[cache]
l3_path = %q
[cluster]
redis_url = "redis://%s/0"
[error_recovery]
# The breaker phase waits out one opening: 2 s instead of the default 60.
circuit_breaker_timeout = 2.0
[parallel_execution]
max_workers = 100
# Offered 300 req/s against a share of about 67: a short queue answers the
# excess 429 (with Retry-After) at once instead of holding it past the
# client's timeout.
queue_size = 100
[upstreams.sim]
base_url = %q
models = ["sim-model"]
[upstreams.sim.rate_limit]
initial_rate = %g
max_rate = %g
`, d.addr(2+i), filepath.Join(d.cfg.Work, name+"-l3"), d.addr(0), d.url(1), d.cfg.InitialRate, d.cfg.MaxRate)
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		return err
	}
	return d.start(name, filepath.Join(d.cfg.Bin, "deerd"), nil, "--config", cfgPath)
}

func (d *drill) start(name, bin string, env []string, args ...string) error {
	logf, err := os.Create(d.logPath(name))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	d.mu.Lock()
	d.procs[name] = p
	d.mu.Unlock()
	return nil
}

// kill SIGKILLs a process (its whole group) and waits for it.
func (d *drill) kill(name string) {
	d.mu.Lock()
	p := d.procs[name]
	delete(d.procs, name)
	d.mu.Unlock()
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (d *drill) stopAll() {
	d.stopLoadNow()
	d.mu.Lock()
	names := make([]string, 0, len(d.procs))
	for n := range d.procs {
		names = append(names, n)
	}
	d.mu.Unlock()
	for _, n := range names {
		d.kill(n)
	}
	d.client.CloseIdleConnections()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
