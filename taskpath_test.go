package deer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// upstream is a real HTTP server over loopback that echoes what it got and
// can be held: while gate is set, requests wait on it.
type upstream struct {
	srv       *httptest.Server
	calls     atomic.Int64
	cancelled atomic.Int64 // held calls that ended because the caller gave up
	mu        sync.Mutex
	gate      chan struct{}
	order     []string // X-Test-Name of each request, in arrival order
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		u.mu.Lock()
		u.order = append(u.order, r.Header.Get("X-Test-Name"))
		gate := u.gate
		u.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				u.cancelled.Add(1)
				return
			}
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"path":%q,"auth":%q,"body_len":%d}`, r.Method, r.URL.Path, r.Header.Get("Authorization"), len(body))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// hold makes calls wait until the returned gate is closed. A test that
// ends without closing it (a failed wait) has it opened at cleanup, before
// the runtime stops: held calls would otherwise keep the runtime's drain and
// the server's Close waiting.
func (u *upstream) hold(t testing.TB) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	gate := make(chan struct{})
	u.gate = gate
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	return gate
}

func (u *upstream) arrivals() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.order...)
}

// goSubmit submits task on a goroutine of its own and delivers the result,
// for tests that must act while the task is in flight.
func goSubmit(t testing.TB, rt *deer.Runtime, task *messages.Task) <-chan *messages.TaskResult {
	ch := make(chan *messages.TaskResult, 1)
	go func() {
		res, err := rt.Submit(context.Background(), task)
		if err != nil {
			t.Error(err)
		}
		ch <- res
	}()
	return ch
}

func taskConfig(t testing.TB, u *upstream) *conf.Config {
	cfg := testConfig(t)
	cfg.ConnectionPool.InitialConnections = 0
	unlimited(cfg)
	// Identical calls here test the queue and workers, each on its own: the
	// cache and coalescing (cachepath_test.go) stay out of the way.
	cfg.Upstreams = map[string]conf.Upstream{"up": {BaseURL: u.srv.URL, Cache: "never", Timeout: 60}}
	return cfg
}

func TestSubmitRunsATaskOnTheUpstream(t *testing.T) {
	t.Setenv("DEER_TEST_UP_KEY", "k-123")
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	up := cfg.Upstreams["up"]
	up.APIKeyEnv = "DEER_TEST_UP_KEY" // the caller's Authorization is replaced by it
	cfg.Upstreams["up"] = up
	rt := start(t, cfg)
	res, err := rt.Submit(context.Background(), &messages.Task{
		Upstream: "up", Method: "POST", Path: "/v1/echo", Body: []byte(`{"x":1}`),
		Header: map[string][]string{"Authorization": {"Bearer caller-must-not-pass"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != messages.TaskSucceeded || res.UpstreamStatus != 200 {
		t.Fatalf("result %+v (err %+v)", res, res.Err)
	}
	want := `{"method":"POST","path":"/v1/echo","auth":"Bearer k-123","body_len":7}`
	if string(res.Body) != want {
		t.Errorf("body %s, want %s", res.Body, want)
	}
	if res.ID == "" || res.Attempts != 1 || res.Cache != "miss" {
		t.Errorf("id %q attempts %d cache %q", res.ID, res.Attempts, res.Cache)
	}
	m := rt.Metrics(context.Background())
	p := m.ConnectionPool.Upstreams["up"]
	if p.TotalAcquired != 1 || p.TotalReleased != 1 || p.ActiveConnections != 0 || p.LaneAcquired != 1 {
		t.Errorf("pool after one task: %+v", p)
	}
	prom := prometheusText(rt)
	for _, line := range []string{`deer_tasks_total{upstream="up",outcome="succeeded"} 1`,
		"deer_task_duration_seconds_count 1", "deer_overhead_seconds_count 1"} {
		if !strings.Contains(prom, line) {
			t.Errorf("Prometheus text lacks %q", line)
		}
	}
}

func TestUnknownUpstreamIsRefused(t *testing.T) {
	u := newUpstream(t)
	rt := start(t, taskConfig(t, u))
	res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "nope", Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != messages.TaskFailed || res.Err == nil || res.Err.Code != messages.CodeUnknownTarget {
		t.Fatalf("result %+v", res)
	}
	if u.calls.Load() != 0 {
		t.Errorf("the upstream was called")
	}
}

func TestPriorityOrderUnderSaturation(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.ParallelExecution.MaxWorkers = 1
	// A clock that does not move: no aging, so the order is strict priority.
	rt := start(t, cfg, deer.WithClock(clock.NewFake(t0)))
	gate := u.hold(t)

	submit := func(name string, prio int) <-chan *messages.TaskResult {
		return goSubmit(t, rt, &messages.Task{Upstream: "up", Method: "GET", Path: "/", Priority: prio,
			Header: map[string][]string{"X-Test-Name": {name}}})
	}
	var results []<-chan *messages.TaskResult
	results = append(results, submit("busy", 1))
	actortest.Eventually(t, "the first task to reach the upstream", func() bool { return u.calls.Load() == 1 })
	// The only worker is busy: these queue. Submit them one at a time so
	// their arrival order is known.
	for _, s := range []struct {
		name string
		prio int
	}{{"low-1", 2}, {"low-2", 2}, {"normal", 1}, {"high", 0}} {
		results = append(results, submit(s.name, s.prio))
		want := len(results) - 1
		actortest.Eventually(t, "the task to queue", func() bool {
			return rt.Metrics(context.Background()).RequestQueue.Size == want
		})
	}
	close(gate)
	for _, ch := range results {
		if res := actortest.Await(t, "a queued task's answer", ch); res.Status != messages.TaskSucceeded {
			t.Errorf("task failed: %+v", res.Err)
		}
	}
	got := u.arrivals()
	want := []string{"busy", "high", "normal", "low-1", "low-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("upstream saw %v, want %v", got, want)
	}
}

func TestFullQueueIsRefusedWithQueueFull(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.ParallelExecution.MaxWorkers = 1
	cfg.ParallelExecution.QueueSize = 2
	rt := start(t, cfg)
	gate := u.hold(t)
	defer close(gate)
	ctx := context.Background()
	// One running, two queued: the queue is full.
	var ids []string
	for i := 0; i < 3; i++ {
		id, refused, err := rt.SubmitAsync(ctx, &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
		if err != nil || refused != nil {
			t.Fatalf("task %d: err %v refused %+v", i, err, refused)
		}
		ids = append(ids, id)
		if i == 0 {
			actortest.Eventually(t, "the first task to run", func() bool { return u.calls.Load() == 1 })
		}
	}
	res, err := rt.Submit(ctx, &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err == nil || res.Err.Code != messages.CodeQueueFull {
		t.Fatalf("fourth task: %+v", res)
	}
	st, err := rt.TaskStatus(ctx, ids[2], "")
	if err != nil || !st.Found || st.State != messages.TaskQueued {
		t.Errorf("status of a queued task: %+v, %v", st, err)
	}
	// Cancelling a queued task frees its place.
	c, err := rt.CancelTask(ctx, ids[2], "")
	if err != nil || !c.Found {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if st, _ := rt.TaskStatus(ctx, ids[2], ""); st.State != messages.TaskFailed || st.Result.Err.Code != messages.CodeCancelled {
		t.Errorf("cancelled task status: %+v", st)
	}
}

func TestTaskTimeoutCancelsTheUpstreamCall(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.ParallelExecution.WorkerTimeout = 0.2
	rt := start(t, cfg)
	gate := u.hold(t)
	defer close(gate)
	res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err == nil || res.Err.Code != messages.CodeTimeout {
		t.Fatalf("result %+v", res)
	}
	// The held call ends because deerd gave up on it, not because the
	// upstream let it go: the gate stays shut until the upstream sees the
	// cancellation.
	actortest.Eventually(t, "the upstream to see the call cancelled", func() bool { return u.cancelled.Load() == 1 })
	// The worker is free again: a task after the hang runs.
	u.mu.Lock()
	u.gate = nil
	u.mu.Unlock()
	res, err = rt.Submit(context.Background(), &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
	if err != nil || res.Status != messages.TaskSucceeded {
		t.Fatalf("task after a timeout: %+v %v", res, err)
	}
}

func TestConcurrentTasksAreAllAnsweredOnce(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.ParallelExecution.QueueSize = 5000
	rt := start(t, cfg)
	const n = 2000
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "up", Method: "GET", Path: "/", Priority: i % 3})
			switch {
			case err != nil:
				t.Error(err)
			case res.Status == messages.TaskSucceeded:
				ok.Add(1)
			default:
				failed.Add(1)
				t.Errorf("task failed: %+v", res.Err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != n || u.calls.Load() != n {
		t.Errorf("succeeded %d, upstream calls %d, want %d each", ok.Load(), u.calls.Load(), n)
	}
	p := rt.Metrics(context.Background()).ConnectionPool
	if p.TotalAcquired-p.TotalReleased != uint64(p.ActiveConnections) || p.PeakUsage > p.MaxConnections || p.TotalAcquired != n {
		t.Errorf("pool numbers do not add up: %+v", p)
	}
}

func TestStopDrainsQueuedTasks(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.ParallelExecution.MaxWorkers = 2
	rt, err := deer.Start(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	gate := u.hold(t)
	const n = 20
	results := make(chan *messages.TaskResult, n)
	for i := 0; i < n; i++ {
		go func() {
			res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	actortest.Eventually(t, "tasks to queue", func() bool {
		m := rt.Metrics(context.Background())
		return m.RequestQueue.Size+m.AdvancedOptimizations.ParallelExecutor.ActiveTasks == n
	})
	stopped := make(chan error, 1)
	go func() { stopped <- rt.Stop(context.Background()) }()
	// New work is refused while draining; what was accepted finishes.
	actortest.Eventually(t, "the router to drain", func() bool {
		return rt.Metrics(context.Background()).AdvancedOptimizations.ParallelExecutor.Draining
	})
	res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
	if err != nil || res.Err == nil || res.Err.Code != messages.CodeShuttingDown {
		t.Errorf("a task submitted while draining: %+v, %v", res, err)
	}
	close(gate)
	for i := 0; i < n; i++ {
		if res := actortest.Await(t, "a queued task's answer", results); res.Status != messages.TaskSucceeded {
			t.Errorf("a queued task was not finished: %+v", res.Err)
		}
	}
	if err := actortest.Await(t, "Stop to return", stopped); err != nil {
		t.Fatal(err)
	}
}

func quiet() deer.Option { return deer.WithLogger(zerolog.New(io.Discard), nil) }

func TestATaskWhoseWorkerDiesIsDispatchedAgain(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.ParallelExecution.MaxWorkers = 2
	rt := start(t, cfg)
	gate := u.hold(t)
	done := goSubmit(t, rt, &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
	actortest.Eventually(t, "the task to reach the upstream", func() bool { return u.calls.Load() == 1 })
	// Stop both workers (which one is busy is not visible from here): the
	// router replaces them and the busy one's task runs again on a new one.
	// It may be sent more than twice: when the busy worker's end is seen
	// first, the task can go to the other worker before that one's stop
	// lands, and is sent again when it does.
	for _, name := range []string{"worker/1", "worker/2"} {
		pid, ok := rt.Registry().PID(name)
		if !ok {
			t.Fatalf("%s not registered", name)
		}
		rt.System().Root.Stop(pid)
	}
	actortest.Eventually(t, "the task to be sent again", func() bool { return u.calls.Load() >= 2 })
	close(gate)
	res := actortest.Await(t, "the re-dispatched task's answer", done)
	if res.Status != messages.TaskSucceeded {
		t.Fatalf("re-dispatched task: %+v", res.Err)
	}
	if st := rt.Metrics(context.Background()).AdvancedOptimizations.ParallelExecutor; st.Workers != 2 {
		t.Errorf("workers after replacement = %d, want 2", st.Workers)
	}
}

// unlimited lifts the rate limiter out of the way of tests about something
// else: the defaults (10 requests/s, sized for LLM providers) would pace
// them, and on a fake clock the bucket would never refill.
func unlimited(cfg *conf.Config) {
	cfg.RateLimit.InitialRate, cfg.RateLimit.MaxRate, cfg.RateLimit.BurstAllowance = 100000, 100000, 100000
}

// A worker that does not report within its task's timeout (plus a second)
// is given up on: the router answers timeout itself and replaces the
// worker. The router's clock is driven by hand; the held call's own
// deadline (real time, five minutes) is far off, so only the watchdog can
// answer.
func TestWatchdogAnswersAWedgedTaskAndReplacesItsWorker(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.ParallelExecution.MaxWorkers = 1
	clk := clock.NewFake(t0)
	rt := start(t, cfg, deer.WithClock(clk))
	before, _ := rt.Registry().PID("worker/1")
	gate := u.hold(t)
	defer close(gate)
	done := goSubmit(t, rt, &messages.Task{Upstream: "up", Method: "GET", Path: "/"})
	actortest.Eventually(t, "the call to reach the upstream", func() bool { return u.calls.Load() == 1 })
	clk.Advance(conf.Seconds(cfg.ParallelExecution.WorkerTimeout)) // not yet overdue: the grace second is left
	select {
	case res := <-done:
		t.Fatalf("answered before the grace second passed: %+v", res)
	default:
	}
	clk.Advance(time.Second)
	res := actortest.Await(t, "the watchdog's answer", done)
	if res.Err == nil || res.Err.Code != messages.CodeTimeout {
		t.Fatalf("wedged task: %+v", res)
	}
	actortest.Eventually(t, "worker/1 to be replaced", func() bool {
		after, ok := rt.Registry().PID("worker/1")
		return ok && after.Id != before.Id
	})
}
