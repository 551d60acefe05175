package deer_test

// Stopping deer while a task waits out an upstream's Retry-After: in the
// limiter's pause for a token, or in its own retry delay. Everything runs
// on one fake clock (the runtime's and the simulator's), so a pause lasts
// until the test moves the clock, and "Stop waits for X" is shown by what
// the clock has to reach before Stop returns.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

// stopGrace is the drain deadline the tests stop with (real time, turned
// into the runtime's fake time by Drain): far beyond any Retry-After below
// but the 60 s one.
const stopGrace = 20 * time.Second

// throttled is a runtime and a simulator on one fake clock; the simulator
// admits one request a second and answers the rest 429 with Retry-After.
type throttled struct {
	rt  *deer.Runtime
	clk *clock.Fake
	sim *sim.Simulator
	n   int // numbers the chat bodies, so that none is coalesced or cached
}

func newThrottled(t *testing.T, retryAfter, maxRetries int, change ...func(*conf.Config)) *throttled {
	t.Helper()
	clk := clock.NewFake(t0)
	knobs := sim.DefaultKnobs()
	knobs.Capacity, knobs.RetryAfter = 1, retryAfter
	s := sim.New(knobs, sim.WithClock(clk), sim.WithSeed(1), sim.WithModels("sim-model", "sim-embed"))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)

	cfg := testConfig(t)
	cfg.ConnectionPool.InitialConnections = 0
	cfg.Monitoring.DetailedLogging = false
	cfg.ErrorRecovery.MaxRetries, cfg.ErrorRecovery.BaseDelay = maxRetries, 0.01
	up := conf.NewUpstream(srv.URL)
	up.Cache = "never"
	cfg.Upstreams = map[string]conf.Upstream{"up": up}
	for _, c := range change {
		c(cfg)
	}
	return &throttled{rt: start(t, cfg, deer.WithClock(clk)), clk: clk, sim: s}
}

func (th *throttled) chat() *messages.Task {
	th.n++
	return &messages.Task{Upstream: "up", Method: "POST", Path: "/v1/chat/completions",
		Body: fmt.Appendf(nil, `{"model": "sim-model", "messages": [{"role": "user", "content": "q%d"}]}`, th.n)}
}

func (th *throttled) limiter() *messages.LimiterStats {
	return th.rt.Metrics(context.Background()).AdvancedOptimizations.RateLimiter.Upstreams["up"]
}

// pause spends the simulator's one token with a call that succeeds and
// makes the next one throttled: its 429 pauses the limiter for the
// Retry-After. The throttled call is returned (failed, without retries;
// with them it is still waiting to retry).
func (th *throttled) pause(t *testing.T) <-chan *messages.TaskResult {
	t.Helper()
	if res, err := th.rt.Submit(context.Background(), th.chat()); err != nil || res.Status != messages.TaskSucceeded {
		t.Fatalf("first call: %+v %v", res, err)
	}
	b := goSubmit(t, th.rt, th.chat())
	actortest.Eventually(t, "the limiter to pause on the 429's Retry-After", func() bool { return th.limiter().PausedFor > 0 })
	return b
}

// waitToken submits a task that waits for its token in the limiter's
// pause; ctx is its caller's.
func (th *throttled) waitToken(t *testing.T, ctx context.Context) <-chan *messages.TaskResult {
	t.Helper()
	ch := make(chan *messages.TaskResult, 1)
	go func() {
		res, _ := th.rt.Submit(ctx, th.chat())
		ch <- res
	}()
	actortest.Eventually(t, "the task to wait for a token", func() bool { return th.limiter().Waiting == 1 })
	return ch
}

// stop stops the runtime on a goroutine with stopGrace to drain.
func (th *throttled) stop(t *testing.T) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	stopped := make(chan error, 1)
	var done atomic.Bool
	go func() {
		defer cancel()
		err := th.rt.Stop(ctx)
		done.Store(true)
		stopped <- err
	}()
	// Draining, or stopped already (then the router answers nothing).
	actortest.Eventually(t, "the router to drain", func() bool {
		return done.Load() || th.rt.Metrics(context.Background()).AdvancedOptimizations.ParallelExecutor.Draining
	})
	return stopped
}

// waitTimer waits until a timer is due in d on the fake clock.
func waitTimer(t *testing.T, clk *clock.Fake, d time.Duration) {
	t.Helper()
	actortest.Eventually(t, fmt.Sprintf("a timer due in %v", d), func() bool { return slices.Contains(clk.Pending(), d) })
}

// stoppedNow asserts that Stop returns with the fake clock where it is.
func stoppedNow(t *testing.T, stopped <-chan error) {
	t.Helper()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(actortest.Wait):
		t.Fatalf("Stop still draining after %v with the clock standing still: it waits for a task nobody waits for", actortest.Wait)
	}
}

func result(t *testing.T, ch <-chan *messages.TaskResult) *messages.TaskResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(actortest.Wait):
		t.Fatal("no answer")
	}
	return nil
}

// (a) The caller still waits: the task may finish within the grace, so
// Stop waits for the pause (10 s of the clock), no longer, and the task
// gets its token and its answer.
func TestStopLetsATaskWaitingForATokenFinishWithinTheGrace(t *testing.T) {
	th := newThrottled(t, 10, 0)
	if res := result(t, th.pause(t)); res.UpstreamStatus != 429 {
		t.Fatalf("throttled call: %+v", res)
	}
	c := th.waitToken(t, context.Background())
	stopped := th.stop(t)
	waitTimer(t, th.clk, 10*time.Second) // the limiter's alarm for the pause's end
	th.clk.Advance(10 * time.Second)
	if res := result(t, c); res.Status != messages.TaskSucceeded {
		t.Errorf("the task waiting out the pause: %+v", res.Err)
	}
	stoppedNow(t, stopped)
}

// (a') A pause longer than the grace: at the drain's deadline the task is
// answered shutting_down and Stop returns; it does not wait for the pause.
func TestStopAnswersATaskWaitingPastTheGraceShuttingDown(t *testing.T) {
	th := newThrottled(t, 60, 0)
	result(t, th.pause(t))
	c := th.waitToken(t, context.Background())
	stopped := th.stop(t)
	th.clk.Advance(stopGrace)
	if res := result(t, c); res.Err == nil || res.Err.Code != messages.CodeShuttingDown {
		t.Errorf("the task waiting past the grace: %+v", res)
	}
	stoppedNow(t, stopped)
}

// (b) The caller is gone before Stop (an HTTP client that hung up): its
// task is cancelled at once, the limiter forgets its wait, and Stop does
// not wait for the pause at all.
func TestStopDoesNotWaitForATokenWhoseCallerLeft(t *testing.T) {
	th := newThrottled(t, 10, 0)
	result(t, th.pause(t))
	ctx, cancel := context.WithCancel(context.Background())
	c := th.waitToken(t, ctx)
	cancel()
	if res := result(t, c); res != nil {
		t.Fatalf("a caller that left got %+v", res)
	}
	stoppedNow(t, th.stop(t))
}

// (c) A task in its retry delay (the 429's Retry-After): with its caller
// waiting, Stop waits for the delay and the retry's answer; with its caller
// gone, Stop returns at once.
func TestStopAndATaskWaitingToRetry(t *testing.T) {
	t.Run("caller waits", func(t *testing.T) {
		th := newThrottled(t, 7, 1)
		b := th.pause(t)
		waitTimer(t, th.clk, 7*time.Second) // the worker's retry delay
		stopped := th.stop(t)
		th.clk.Advance(7 * time.Second)
		if res := result(t, b); res.Status != messages.TaskSucceeded || res.Attempts != 2 {
			t.Errorf("the retried task: %+v attempts=%d", res.Err, res.Attempts)
		}
		stoppedNow(t, stopped)
	})
	t.Run("caller gone", func(t *testing.T) {
		th := newThrottled(t, 7, 1)
		if res, err := th.rt.Submit(context.Background(), th.chat()); err != nil || res.Status != messages.TaskSucceeded {
			t.Fatalf("first call: %+v %v", res, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := th.rt.Submit(ctx, th.chat())
			done <- err
		}()
		waitTimer(t, th.clk, 7*time.Second)
		cancel()
		actortest.Await(t, "the cancelled call to return", done)
		stoppedNow(t, th.stop(t))
	})
}

// (d) Embedding calls combined into one call whose callers all left: the
// combined call serves nobody, so it must not hold the drain (nor spend an
// upstream call) while it waits out the pause.
func TestStopDoesNotWaitForACombinedCallWhoseCallersLeft(t *testing.T) {
	th := newThrottled(t, 10, 0, func(cfg *conf.Config) {
		up := cfg.Upstreams["up"]
		up.Batch = "openai-embeddings"
		cfg.Upstreams["up"] = up
		cfg.BatchProcessing.BatchSize, cfg.BatchProcessing.AdaptiveSizing, cfg.BatchProcessing.PriorityEnabled = 2, false, false
	})
	result(t, th.pause(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for i := range 2 {
		go func() {
			_, _ = th.rt.Submit(ctx, &messages.Task{Upstream: "up", Method: "POST", Path: "/v1/embeddings",
				Body: fmt.Appendf(nil, `{"model": "sim-embed", "input": "e%d"}`, i)})
			done <- struct{}{}
		}()
	}
	actortest.Eventually(t, "the combined call to wait for a token", func() bool { return th.limiter().Waiting == 1 })
	cancel()
	actortest.Await(t, "the first cancelled call to return", done)
	actortest.Await(t, "the second cancelled call to return", done)
	stoppedNow(t, th.stop(t))
}
