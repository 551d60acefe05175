package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deer-runtime/deer/internal/load"
)

// Feature is one row of Phase C: what deerd does, next to what nginx does
// with the same upstream behaviour.
type Feature struct {
	Name  string `json:"name"`
	How   string `json:"how"`
	Deerd string `json:"deerd"`
	Nginx string `json:"nginx"`
}

// phaseC checks the features: first the cache, coalescing and embedding
// batching (cache.go), then the resilience features against a misbehaving
// simulator, the breaker last (it leaves deerd's breaker open).
func (r *runner) phaseC(ctx context.Context) error {
	if err := r.cacheChecks(ctx); err != nil {
		return err
	}
	for _, check := range []func(context.Context) (Feature, error){r.retryAmplification, r.retryAfter, r.breakerFastFail} {
		f, err := check(ctx)
		if err != nil {
			return err
		}
		r.res.PhaseC = append(r.res.PhaseC, f)
	}
	return r.control(ctx, `{"latency": "0s", "error_rate": 0, "capacity": 0}`)
}

// retryAmplification sends load while 10% of the simulator's answers are
// 500s: how many requests succeed, and how many upstream calls that took.
func (r *runner) retryAmplification(ctx context.Context) (Feature, error) {
	f := Feature{
		Name: "Retry amplification under 10% 5xx",
		How: fmt.Sprintf("deersim error_rate 0.1; %g req/s for %s; upstream calls from deersim's /_stats",
			r.plan.RetryRate, r.plan.RetryDuration),
	}
	r.logf("phase C: retry amplification")
	if err := r.control(ctx, `{"latency": "0s", "error_rate": 0.1, "capacity": 0}`); err != nil {
		return f, err
	}
	err := r.eachProxy(ctx, &f, nil, func(t target) (string, error) {
		var res load.Result
		if err := r.deerload(ctx, &res, "rate", "--url", t.url, "--body", Body,
			"--rate", fmt.Sprint(r.plan.RetryRate), "--duration", r.plan.RetryDuration.String(), "--timeout", "60s"); err != nil {
			return "", err
		}
		st, err := r.simStats(ctx, false)
		calls := st.Requests["/v1/chat/completions"]
		return fmt.Sprintf("%.2f%% succeeded; %d upstream calls for %d requests (×%.3f); p99 %s",
			res.SuccessPct, calls, res.Sent, float64(calls)/float64(max(res.Sent, 1)), us(float64(res.Latency.P99))), err
	})
	if err != nil {
		return f, err
	}
	return f, r.control(ctx, `{"error_rate": 0}`)
}

// retryAfter sends distinct requests faster than a simulator admitting 20
// per second, which answers the rest 429 with Retry-After: 1. The simulator
// follows each 429 to its retry (same body) and counts retries sent before
// the second had passed.
func (r *runner) retryAfter(ctx context.Context) (Feature, error) {
	f := Feature{
		Name: "Retry-After honoured",
		How: fmt.Sprintf("deersim capacity 20 req/s, Retry-After: 1; %d distinct requests at %g req/s; deersim matches each 429 to its retry",
			r.plan.LimitedTasks, r.plan.LimitedRate),
	}
	r.logf("phase C: Retry-After")
	if err := r.control(ctx, `{"error_rate": 0, "capacity": 20, "retry_after": 1}`); err != nil {
		return f, err
	}
	refill := func(target) { time.Sleep(1100 * time.Millisecond) } // the simulator's bucket refills: each target starts alike
	err := r.eachProxy(ctx, &f, refill, func(t target) (string, error) {
		out := r.distinct(ctx, t.url, t.name, r.plan.LimitedTasks, r.plan.LimitedRate, 60*time.Second)
		st, err := r.simStats(ctx, false)
		ra := st.RetryAfter
		v := fmt.Sprintf("%d/%d succeeded (%s); upstream answered %d 429s; %d retries of them, %d sooner than Retry-After",
			out.ok, out.n, out.statuses(), ra.Asked, ra.Retried, ra.Early)
		if ra.Retried > 0 {
			v += fmt.Sprintf(" (shortest wait %.0f ms)", ra.MinWaitMS)
		}
		return v, err
	})
	if err != nil {
		return f, err
	}
	return f, r.control(ctx, `{"capacity": 0}`)
}

// breakerFastFail makes every upstream answer a 500, opens deerd's breaker
// with a few requests, then times requests while it is open.
func (r *runner) breakerFastFail(ctx context.Context) (Feature, error) {
	f := Feature{
		Name: "Breaker fast-fail",
		How: fmt.Sprintf("deersim error_rate 1; rounds of 5 concurrent requests until deerd's breaker opens (threshold 5 failures "+
			"that are also ≥ failure_rate_threshold of the calls in failure_window: the earlier phases' successes count); then %d sequential requests",
			r.plan.FastFails),
	}
	r.logf("phase C: breaker fast-fail")
	if err := r.control(ctx, `{"error_rate": 1, "capacity": 0}`); err != nil {
		return f, err
	}
	openBreaker := func(t target) {
		if t.name != Deerd {
			return
		}
		for round := 1; round <= 100 && ctx.Err() == nil; round++ {
			r.distinct(ctx, t.url, fmt.Sprintf("prime%d", round), 5, 1000, 60*time.Second)
			if r.breakerOpen(ctx, t) {
				r.logf("phase C: deerd's breaker opened after %d failing requests", 5*round)
				return
			}
		}
	}
	err := r.eachProxy(ctx, &f, openBreaker, func(t target) (string, error) {
		out := r.sequential(ctx, t.url, r.plan.FastFails)
		st, err := r.simStats(ctx, false)
		return fmt.Sprintf("answered %s; p50 %s, p99 %s; %d upstream calls",
			out.statuses(), us(out.quantile(0.5)), us(out.quantile(0.99)), st.Requests["/v1/chat/completions"]), err
	})
	if err != nil {
		return f, err
	}
	return f, r.control(ctx, `{"error_rate": 0}`)
}

// eachProxy runs a feature check on nginx and on deerd (those running):
// before(t) first (may be nil), then the simulator's counters are reset,
// then measure(t), whose line goes in t's column of f.
func (r *runner) eachProxy(ctx context.Context, f *Feature, before func(target), measure func(target) (string, error)) error {
	for _, name := range []string{Nginx, Deerd} {
		t, ok := r.target(name)
		if !ok {
			continue
		}
		if before != nil {
			before(t)
		}
		if _, err := r.simStats(ctx, true); err != nil {
			return err
		}
		v, err := measure(t)
		if err != nil {
			return err
		}
		f.set(name, v)
	}
	return nil
}

func (f *Feature) set(target, v string) {
	if target == Deerd {
		f.Deerd = v
	} else {
		f.Nginx = v
	}
}

// outcome gathers the answers of a Phase C batch.
type outcome struct {
	mu        sync.Mutex
	n, ok     int
	status    map[int]int
	latencies []float64 // µs
}

func (o *outcome) add(code int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.status == nil {
		o.status = map[int]int{}
	}
	o.n++
	o.status[code]++ // 0: no answer
	if code >= 200 && code < 300 {
		o.ok++
	}
	o.latencies = append(o.latencies, float64(d.Microseconds()))
}

func (o *outcome) quantile(q float64) float64 { return load.Quantile(o.latencies, q) }

func (o *outcome) statuses() string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(o.status)) {
		label := fmt.Sprint(code)
		if code == 0 {
			label = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%d × %s", o.status[code], label))
	}
	return strings.Join(parts, ", ")
}

// distinct sends n requests at rate on an open-loop schedule, each with its
// own body (so that the simulator can tell a retry from a new request), and
// waits for all answers.
func (r *runner) distinct(ctx context.Context, url, tag string, n int, rate float64, timeout time.Duration) *outcome {
	out := &outcome{}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(due))
		body := fmt.Sprintf(`{"model":"sim-model","messages":[{"role":"user","content":"%s %d %d"}]}`, tag, start.UnixNano(), i)
		wg.Go(func() {
			code, d := r.call(ctx, url, body, timeout)
			out.add(code, d)
		})
	}
	wg.Wait()
	return out
}

// breakerOpen reports whether deerd's /metrics shows an open breaker.
func (r *runner) breakerOpen(ctx context.Context, t target) bool {
	raw, err := r.get(ctx, strings.TrimSuffix(t.url, "/v1/chat/completions")+"/metrics", "application/json")
	if err != nil {
		return false
	}
	var m struct {
		AdvancedOptimizations struct {
			ErrorRecovery struct {
				CircuitBreakerState string `json:"circuit_breaker_state"`
			} `json:"error_recovery"`
		} `json:"advanced_optimizations"`
	}
	return json.Unmarshal(raw, &m) == nil && m.AdvancedOptimizations.ErrorRecovery.CircuitBreakerState == "open"
}

// sequential sends n requests one after the other.
func (r *runner) sequential(ctx context.Context, url string, n int) *outcome {
	out := &outcome{}
	for range n {
		code, d := r.call(ctx, url, Body, 10*time.Second)
		out.add(code, d)
	}
	return out
}

// call sends one chat completion and reads the answer; code 0 means none.
func (r *runner) call(ctx context.Context, url, body string, timeout time.Duration) (int, time.Duration) {
	a := r.send(ctx, url, body, timeout, time.Now())
	return a.code, a.d
}
