package dashboard_test

// The dashboard against a real deerd (runtime + HTTP API on loopback, the
// simulator as upstream), loaded in a real headless Chromium driven with
// chromedp while load runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi"
	"github.com/deer-runtime/deer/httpapi/dashboard"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/internal/sim"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

// TestPageHasNoExternalAsset: every URL the page names is deerd's own
// (a path) or inline (data:), so it works offline.
func TestPageHasNoExternalAsset(t *testing.T) {
	page := string(dashboard.Page())
	refs := regexp.MustCompile(`(?i)(?:src|href|action)\s*=\s*["']?([^"'\s>]+)|url\(\s*["']?([^"')]+)|@import\s+["']?([^"';\s]+)|fetch\(\s*['"]([^'"]+)`).FindAllStringSubmatch(page, -1)
	fetched := 0
	for _, m := range refs {
		ref := m[1] + m[2] + m[3] + m[4]
		switch {
		case strings.HasPrefix(ref, "data:"):
		case strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, "//"):
			fetched++
		default:
			t.Errorf("the page refers to %q: not deerd's own and not inline", ref)
		}
	}
	if fetched != 0 {
		t.Errorf("found %d literal fetches; the page reads its endpoints through getJSON", fetched)
	}
	for _, path := range []string{"'/metrics'", "'/metrics/history'"} {
		if !strings.Contains(page, "getJSON("+path+")") {
			t.Errorf("the page does not read %s", path)
		}
	}
	if n := strings.Count(page, "<script"); n != 1 || strings.Contains(page, "<script src") {
		t.Errorf("want one inline script, found %d script tags", n)
	}
}

// TestDashboardRoutes: GET /dashboard and /dashboard/ serve the page as
// HTML under a policy that keeps it to deerd; nothing else lives below it.
func TestDashboardRoutes(t *testing.T) {
	cfg := conf.Default()
	cfg.Cache.L3Path = t.TempDir()
	d := startDeerd(t, cfg)
	for _, path := range []string{"/dashboard", "/dashboard/"} {
		resp, body := get(t, d.url+path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if string(body) != string(dashboard.Page()) {
			t.Errorf("GET %s: not the page (%d bytes)", path, len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if resp, _ := get(t, d.url+"/dashboard/app.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dashboard/app.js: %d, want 404", resp.StatusCode)
	}
	resp, err := http.Post(d.url+"/dashboard", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /dashboard: %d, want 405", resp.StatusCode)
	}
}

// observation is what the page shows at one moment: the data-* attributes
// each panel exposes, and each canvas's inked pixels and their hash.
type observation struct {
	Polls   int                  `json:"polls"`
	Samples int                  `json:"samples"`
	History int                  `json:"history"` // of them, from /metrics/history
	Tasks   float64              `json:"tasks"`
	Problem string               `json:"problem"`
	Panels  map[string]panelView `json:"panels"`
}

type panelView struct {
	Points int            `json:"points"`
	Max    float64        `json:"max"` // largest value drawn
	Draws  int            `json:"draws"`
	Last   map[string]any `json:"last"`
	Ink    int            `json:"ink"`  // pixels the canvas drew (-1: no canvas)
	Hash   int64          `json:"hash"` // of those pixels
	Rows   int            `json:"rows"` // table rows (breakers)
	States map[string]any `json:"states"`
}

const observe = `(() => {
  const panels = {};
  for (const p of document.querySelectorAll('.panel')) {
    const cv = p.querySelector('canvas');
    let ink = -1, hash = 0;
    if (cv) {
      ink = 0;
      const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
      for (let i = 3; i < d.length; i += 4) if (d[i]) { ink++; hash = (hash * 31 + d[i - 3] * 7 + d[i - 2] * 3 + d[i - 1] + i) | 0; }
    }
    panels[p.dataset.panel] = {
      points: +p.dataset.points || 0, max: +p.dataset.max || 0, draws: +p.dataset.draws || 0, last: JSON.parse(p.dataset.last || '{}'),
      ink, hash, rows: p.querySelectorAll('tbody tr').length, states: JSON.parse(p.dataset.states || '{}'),
    };
  }
  const b = document.body.dataset;
  return { polls: +b.polls, samples: +b.samples, history: +b.history, tasks: +b.tasksTotal, problem: document.getElementById('problem').textContent, panels };
})()`

var canvasPanels = []string{"requests", "latency", "queue", "limiter", "cache", "batching", "restarts"}

// TestDashboardInBrowser loads /dashboard in headless Chromium against a
// deerd under load and checks that every panel draws real data, that the
// plots change from one observation to the next, and that the page logs no
// error. DEER_DASHBOARD_SCREENSHOT=file.png saves what the browser shows.
func TestDashboardInBrowser(t *testing.T) {
	browser := findChromium(t)
	d := startDeerd(t, loadConfig(t))
	stopLoad := runLoad(t, d.url)
	defer stopLoad()

	began := time.Now()
	bctx, errs := openBrowser(t, browser)
	t.Logf("browser up after %v", time.Since(began))

	// The error capture works: a console error is seen.
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`console.error("capture-probe")`)); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := errs.waitFor(ctx, "capture-probe"); err != nil {
		t.Fatalf("console errors are not captured: %v", err)
	}
	errs.reset()

	// Snapshots older than the page: it must show them too.
	waitHistory(t, d.url, 4)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(d.url+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`section[data-panel="requests"] canvas`)),
	); err != nil {
		t.Fatalf("load /dashboard: %v", err)
	}
	// First observation: the page has polled twice, so it has a rate.
	first := waitObservation(t, bctx, `+document.body.dataset.polls >= 2 && +document.querySelector('[data-panel="requests"]').dataset.points > 0`)

	t.Logf("first observation after %v", time.Since(began))
	if first.History == 0 || first.Samples < first.History+first.Polls {
		t.Errorf("the page holds %d samples, %d of them from /metrics/history, after %d polls; want the older snapshots too", first.Samples, first.History, first.Polls)
	}
	// An actor crashes meanwhile: the restarts panel must show it.
	if _, err := d.rt.InjectFault(context.Background(), deer.Fault{Actor: "cache/l2", Kind: "panic", Count: 1}); err != nil {
		t.Fatalf("inject: %v", err)
	}
	second := waitObservation(t, bctx, fmt.Sprintf(`+document.body.dataset.polls >= %d && +document.body.dataset.tasksTotal > %v && `+
		`'cache/l2' in JSON.parse(document.querySelector('[data-panel="restarts"]').dataset.last || '{}') && `+
		`+document.querySelector('[data-panel="batching"]').dataset.points > 0 && +document.querySelector('[data-panel="cache"]').dataset.points > 0`,
		first.Polls+3, first.Tasks))

	t.Logf("second observation after %v", time.Since(began))
	if path := os.Getenv("DEER_DASHBOARD_SCREENSHOT"); path != "" {
		sctx, scancel := context.WithTimeout(bctx, 30*time.Second)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		scancel()
		if err != nil {
			t.Errorf("screenshot: %v", err)
		} else if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Error(err)
		}
	}

	// Every plot drew real data.
	for _, name := range canvasPanels {
		p, ok := second.Panels[name]
		if !ok {
			t.Errorf("panel %s is missing", name)
			continue
		}
		if p.Points == 0 || p.Ink == 0 || len(p.Last) == 0 {
			t.Errorf("panel %s drew nothing: %d points, %d pixels, legend %v", name, p.Points, p.Ink, p.Last)
		}
	}
	if second.Problem != "" {
		t.Errorf("the page reports a problem: %s", second.Problem)
	}
	num := func(panel, key string) float64 {
		t.Helper()
		v, ok := second.Panels[panel].Last[key].(float64)
		if !ok {
			t.Errorf("panel %s: %q is %v, not a number (legend %v)", panel, key, second.Panels[panel].Last[key], second.Panels[panel].Last)
		}
		return v
	}
	// Real values: deerd finished tasks, took time, batched calls; rates
	// may dip to 0 for a second (a Retry-After pause), so the largest value
	// drawn is checked, and the last where it cannot be 0.
	for _, name := range []string{"requests", "latency", "batching", "limiter"} {
		if second.Panels[name].Max <= 0 {
			t.Errorf("panel %s: largest value drawn is %v, want > 0", name, second.Panels[name].Max)
		}
	}
	if _, ok := second.Panels["requests"].Last["succeeded"]; !ok {
		t.Errorf("requests panel has no succeeded line: %v", second.Panels["requests"].Last)
	}
	if p50, p99 := num("latency", "p50"), num("latency", "p99"); p50 <= 0 || p99 < p50 {
		t.Errorf("latency p50 %v ms, p99 %v ms", p50, p99)
	}
	if v := num("queue", "workers"); v != 4 {
		t.Errorf("workers = %v, want the configured 4", v)
	}
	if v := num("limiter", "sim rate"); v <= 0 {
		t.Errorf("sim's limiter rate = %v, want > 0", v)
	}
	if _, ok := second.Panels["limiter"].Last["sim 429/503"]; !ok {
		t.Errorf("limiter panel has no 429/503 line: %v", second.Panels["limiter"].Last)
	}
	if saved := second.Panels["batching"].Last["calls saved"]; saved == "0" || saved == nil {
		t.Errorf("batching saved %v calls, want some: %v", saved, second.Panels["batching"].Last)
	}
	if _, ok := second.Panels["cache"].Last["L1"]; !ok {
		t.Errorf("cache panel has no L1 line: %v", second.Panels["cache"].Last)
	}
	br := second.Panels["breakers"]
	if br.Rows != 2 || len(br.States) != 2 {
		t.Errorf("breakers: %d rows, states %v; want one per endpoint of sim (2)", br.Rows, br.States)
	}
	for name, st := range br.States {
		if st != "closed" && st != "open" && st != "half_open" {
			t.Errorf("breaker %s: state %v", name, st)
		}
	}

	// The plots move: more samples, more points, other pixels.
	if second.Tasks <= first.Tasks || second.Samples <= first.Samples {
		t.Errorf("tasks %v → %v, samples %d → %d: the page did not follow deerd", first.Tasks, second.Tasks, first.Samples, second.Samples)
	}
	for _, name := range []string{"requests", "latency", "queue"} {
		a, b := first.Panels[name], second.Panels[name]
		if b.Points <= a.Points || b.Draws <= a.Draws || b.Hash == a.Hash {
			t.Errorf("panel %s did not change: points %d → %d, draws %d → %d, pixels same: %v", name, a.Points, b.Points, a.Draws, b.Draws, a.Hash == b.Hash)
		}
	}
	if r := num("restarts", "restarts"); r < 1 {
		t.Errorf("restarts = %v after a crash, want ≥ 1", r)
	}

	// What the page shows agrees with deerd.
	var m struct {
		Tasks struct {
			Total float64 `json:"total"`
		} `json:"tasks"`
	}
	_, body := get(t, d.url+"/metrics")
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Tasks.Total < second.Tasks {
		t.Errorf("the page shows %v tasks, deerd counts %v", second.Tasks, m.Tasks.Total)
	}
	if e := errs.all(); len(e) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(e, "\n"))
	}
}

// waitObservation waits (45 s at most) until cond holds in the page of
// bctx, then observes it.
func waitObservation(t *testing.T, bctx context.Context, cond string) observation {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 45*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
		octx, ocancel := context.WithTimeout(bctx, 5*time.Second)
		defer ocancel()
		o, _ := chromedp.Run(octx, chromedp.Evaluate[observation](observe))
		t.Fatalf("waiting for %s: %v; the page shows %+v", cond, err, o)
	}
	o, err := chromedp.Run(ctx, chromedp.Evaluate[observation](observe))
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return o
}

// findChromium returns the browser's path, or skips the test without one
// unless DEER_REQUIRE_BROWSER=1 (CI sets it: there, no browser is a failure).
func findChromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	if p := os.Getenv("DEER_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no headless browser found (looked for %s); install Debian's chromium (scripts/test-deps.sh) or set DEER_CHROMIUM", strings.Join(names, ", "))
	if os.Getenv("DEER_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "; DEER_REQUIRE_BROWSER=1 makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// consoleErrors collects the page's uncaught exceptions, console.error
// calls and error log entries (failed loads, policy violations).
type consoleErrors struct {
	mu     sync.Mutex
	lines  []string
	change chan struct{} // closed and replaced on every new line
}

func (c *consoleErrors) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, s)
	close(c.change)
	c.change = make(chan struct{})
}

func (c *consoleErrors) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

func (c *consoleErrors) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = nil
}

func (c *consoleErrors) waitFor(ctx context.Context, text string) error {
	for {
		c.mu.Lock()
		change := c.change
		for _, l := range c.lines {
			if strings.Contains(l, text) {
				c.mu.Unlock()
				return nil
			}
		}
		c.mu.Unlock()
		select {
		case <-change:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// openBrowser starts headless Chromium with a fresh profile and returns a
// tab's context (without a deadline: that would bound the browser's life;
// bound each action instead). The browser is closed, and waited for, at
// cleanup.
func openBrowser(t *testing.T, path string) (context.Context, *consoleErrors) {
	t.Helper()
	profile := t.TempDir()
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
	)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(bctx, 15*time.Second)
		defer ccancel()
		closing := time.Now()
		if err := chromedp.Cancel(cctx); err != nil {
			t.Logf("closing the browser: %v", err)
		}
		t.Logf("browser closed in %v", time.Since(closing))
		bcancel()
		acancel()
	})
	errs := &consoleErrors{change: make(chan struct{})}
	listen := func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			errs.add(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			errs.add("console." + string(ev.Type) + ": " + strings.Join(parts, " "))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				errs.add(fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}
	// The first call on bctx starts the browser: bounded from outside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Listen(bctx, listen) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", path, err)
		}
	case <-time.After(30 * time.Second):
		bcancel()
		<-started
		t.Fatalf("%s did not start within 30 s", path)
	}
	return bctx, errs
}

type deerd struct {
	url string
	rt  *deer.Runtime
}

// startDeerd runs a runtime (real clock) and its HTTP API on loopback.
func startDeerd(t *testing.T, cfg *conf.Config) *deerd {
	t.Helper()
	log := zerolog.New(io.Discard)
	counters := &httpapi.Counters{}
	rt, err := deer.Start(context.Background(), cfg,
		deer.WithLogger(log, nil),
		deer.WithActor("http", httpapi.ActorProps(cfg.Server.Addr, counters, func() bool { return false }, log)),
		deer.WithFaultInjection(),
	)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	srv := httptest.NewServer(httpapi.New(rt, counters, log))
	t.Cleanup(func() {
		srv.Close()
		// Every caller is gone by now (the load's were cancelled before the
		// server closed): their tasks are cancelled at once, so the drain
		// has nothing to wait for, not even a Retry-After pause.
		began := time.Now()
		if err := rt.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("stop took %v: the drain waited for tasks whose callers had left", took)
		}
	})
	return &deerd{url: srv.URL, rt: rt}
}

// loadConfig has one upstream, the simulator on two endpoints (so two
// breakers), with 3 ms latency, 3% errors and 429s above 150 requests/s;
// embeddings batched; a snapshot for /metrics/history every second.
func loadConfig(t *testing.T) *conf.Config {
	t.Helper()
	knobs := sim.DefaultKnobs()
	knobs.Latency, knobs.ErrorRate, knobs.Capacity = 3*time.Millisecond, 0.03, 150
	s := sim.New(knobs, sim.WithSeed(11), sim.WithModels("sim-model", "sim-embed"))
	a, b := httptest.NewServer(s), httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); a.Close(); b.Close() })

	cfg := conf.Default()
	cfg.Cache.L3Path = t.TempDir()
	cfg.ConnectionPool.InitialConnections = 1
	cfg.Monitoring.DetailedLogging = false
	cfg.Monitoring.ExportInterval, cfg.Monitoring.MetricsRetention = 1, 600
	cfg.ParallelExecution.MaxWorkers = 4
	cfg.BatchProcessing.BatchTimeout = 0.05
	cfg.RateLimit.InitialRate, cfg.RateLimit.MaxRate = 40, 400
	cfg.ErrorRecovery.MaxRetries, cfg.ErrorRecovery.BaseDelay, cfg.ErrorRecovery.MaxDelay = 1, 0.01, 0.1
	up := conf.NewUpstream(a.URL)
	up.Endpoints = []string{b.URL}
	up.Models = []string{"sim-model", "sim-embed"}
	up.Batch = "openai-embeddings"
	cfg.Upstreams = map[string]conf.Upstream{"sim": up}
	cfg.DefaultUpstream = "sim"
	return cfg
}

// runLoad sends requests from a few goroutines until the returned stop is
// called: cacheable chat completions (a small set, so they hit), uncached
// ones, and embeddings (batched). It fails the test if none are answered.
func runLoad(t *testing.T, url string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	client := &http.Client{Transport: tr}
	var answered atomic.Int64
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				path, body := "/v1/chat/completions", fmt.Sprintf(`{"model": "sim-model", "temperature": 0, "messages": [{"role": "user", "content": "q%d"}]}`, i%16)
				switch {
				case g >= 3:
					path, body = "/v1/embeddings", fmt.Sprintf(`{"model": "sim-embed", "input": "e-%d-%d"}`, g, i)
				case i%2 == 1:
					body = fmt.Sprintf(`{"model": "sim-model", "temperature": 0.7, "messages": [{"role": "user", "content": "u%d-%d"}]}`, g, i)
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, strings.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue // stopping, or refused: the next one tries again
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answered.Add(1)
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			tr.CloseIdleConnections()
			if answered.Load() == 0 {
				t.Error("the load got no answer at all")
			}
		})
	}
}

// waitHistory waits (15 s at most) until /metrics/history holds n snapshots.
func waitHistory(t *testing.T, url string, n int) {
	t.Helper()
	var h struct {
		Snapshots []json.RawMessage `json:"snapshots"`
	}
	actortest.EventuallyWithin(t, 15*time.Second, fmt.Sprintf("/metrics/history to hold %d snapshots", n), func() bool {
		_, body := get(t, url+"/metrics/history")
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatal(err)
		}
		return len(h.Snapshots) >= n
	})
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
