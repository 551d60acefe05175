package chaos

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deer-runtime/deer/internal/bench"
	"github.com/deer-runtime/deer/internal/load"
)

// Options say what to drill.
type Options struct {
	Plan Plan
	// Deerd and Sim are the base URLs of the deerd under test and of the
	// deersim it calls ("http://127.0.0.1:9503").
	Deerd, Sim string
	// AdminToken is deerd's server.admin_token, if it has one.
	AdminToken string
	// PID is the process whose peak RSS each phase reports (deerd's; in a
	// test, the test's own); 0 reads none.
	PID int
	// Client makes every request; nil makes one for the run.
	Client *http.Client
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Run drills the deerd at opts.Deerd (see the package doc): it checks that
// the fault API answers, clears every fault, then runs the load and the
// phases, waits for the last answers (at most Plan.Grace after the
// schedule) and returns the accounting. An error means the drill could not
// be made (ErrNoFaultAPI when /faults is off); lost requests and
// duplicates are results (Results.Failed). When ctx ends, Run returns what
// it has with Interrupted set, and ctx's error.
func Run(ctx context.Context, opts Options) (*Results, error) {
	p := opts.Plan
	if err := p.Validate(); err != nil {
		return nil, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "deerchaos: "+format+"\n", args...) }
	client := opts.Client
	if client == nil {
		tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	a := &api{deerd: opts.Deerd, sim: opts.Sim, token: opts.AdminToken, client: client}

	if _, err := a.faults(ctx); err != nil {
		return nil, err
	}
	if err := a.removeAll(ctx); err != nil {
		return nil, err
	}
	if err := a.control(ctx, fmt.Sprintf(`{"latency": %q, "error_rate": 0, "reset_rate": 0, "hang_rate": 0}`, p.SimLatency)); err != nil {
		return nil, fmt.Errorf("deersim: %w", err)
	}

	specs := p.Phases()
	res := &Results{Plan: p, Started: time.Now().UTC(), PID: opts.PID, Phases: make([]PhaseResult, len(specs)), HealthyAfterMS: -1}
	for i, s := range specs {
		res.Phases[i] = PhaseResult{Name: s.Name, Kind: s.Kind, StartS: s.Start.Seconds(), EndS: s.End.Seconds(), Knobs: s.Knobs,
			HealthyAfterMS: -1}
	}
	if opts.PID > 0 {
		res.ClearRefs = bench.ResetPeak(opts.PID)
	}
	callsBefore, err := a.upstreamCalls(ctx)
	if err != nil {
		return nil, fmt.Errorf("deersim: %w", err)
	}
	faultsBefore, err := a.faults(ctx)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	deadline := start.Add(p.Duration + p.Grace)
	reqCtx, cancelReqs := context.WithDeadline(ctx, deadline)
	defer cancelReqs()
	ledger := NewLedger(start)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	d := newDriver(reqCtx, a, ledger, p, run)
	res.Run = run

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Go(func() { res.Samples = sample(sampleCtx, a, start, p.Sample) })

	logf("run %s: %g req/s for %s (%s), %d phases", run, p.Rate, p.Duration, p.Mix, len(specs))
	loadDone := make(chan load.Schedule, 1)
	go func() {
		loadDone <- load.OpenLoop(ctx, p.Rate, p.Duration, 0, nil, d.fire)
	}()

	ph := &phaser{a: a, res: res, opts: opts, start: start, logf: logf}
	lastRemoved, lastActor := time.Time{}, -1
	for i, s := range specs {
		if !ph.sleepUntil(ctx, s.Start) {
			break
		}
		d.phase.Store(int32(i))
		ph.begin(ctx, i, s)
		if s.Actor() {
			if !ph.sleepUntil(ctx, s.Remove) {
				break
			}
			ph.removeFaults(ctx, i)
			lastRemoved, lastActor = time.Now(), i
			res.Phases[i].HealthyAfterMS = healthyAfter(ctx, a, lastRemoved, start.Add(s.End))
		}
		if s.Kind == PhaseRecovery && lastActor >= 0 {
			// The headline: from the removal of the last actor fault to
			// healthy, watched on through this phase, until the upstream
			// faults begin.
			res.HealthyAfterMS = res.Phases[lastActor].HealthyAfterMS
			if res.HealthyAfterMS < 0 {
				res.HealthyAfterMS = healthyAfter(ctx, a, lastRemoved, start.Add(s.End))
			}
		}
		if !ph.sleepUntil(ctx, s.End) {
			break
		}
		ph.end(ctx, i, s)
	}
	sched := <-loadDone
	res.Sent, res.Dropped = sched.Sent, sched.Dropped
	stopSampling()
	sampled.Wait()
	res.Interrupted = ctx.Err() != nil
	logf("schedule over: %d sent; the last answers came %s after it", sched.Sent, time.Since(start.Add(p.Duration)).Round(time.Millisecond))

	// Whatever was left: no fault stays behind the drill.
	fctx := context.WithoutCancel(ctx)
	if err := a.removeAll(fctx); err != nil {
		res.Notes = append(res.Notes, "clearing the faults after the drill: "+err.Error())
	}
	if err := a.control(fctx, `{"error_rate": 0, "reset_rate": 0, "hang_rate": 0}`); err != nil {
		res.Notes = append(res.Notes, "resetting deersim after the drill: "+err.Error())
	}
	if calls, err := a.upstreamCalls(fctx); err == nil {
		res.UpstreamCalls = calls - callsBefore
	}
	if fr, err := a.faults(fctx); err == nil {
		res.Restarts = diffRestarts(faultsBefore.Restarts, fr.Restarts)
		res.Escalations = fr.Escalations - faultsBefore.Escalations
	}
	res.FinalHealth, _ = a.health(fctx)
	res.Finished = time.Now().UTC()

	perPhase, total := ledger.Tally(len(specs))
	for i := range res.Phases {
		res.Phases[i].Counts = perPhase[i]
	}
	res.Total = total
	res.Duplicates = ledger.Duplicates()
	res.Failures = ledger.Failures(maxFailures)
	n := int((p.Duration+p.Grace)/p.Bucket) + 1
	res.Timeline.BucketS = p.Bucket.Seconds()
	res.Timeline.Sent, res.Timeline.Succeeded, res.Timeline.Failed, res.Timeline.Lost = ledger.Series(p.Bucket, n)
	res.Timeline.trim()
	if res.Interrupted {
		return res, ctx.Err()
	}
	return res, nil
}

// maxFailures bounds the failed requests results.json lists.
const maxFailures = 200

// phaser begins and ends the phases.
type phaser struct {
	a     *api
	res   *Results
	opts  Options
	start time.Time
	logf  func(string, ...any)

	calls    int64        // deersim's count at the phase's start
	restarts FaultsReport // GET /faults at the phase's start
}

// sleepUntil waits until offset at from the start; false if ctx ended.
func (ph *phaser) sleepUntil(ctx context.Context, at time.Duration) bool {
	wait := time.Until(ph.start.Add(at))
	if wait <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// begin snapshots the counters and injects the phase's faults.
func (ph *phaser) begin(ctx context.Context, i int, s PhaseSpec) {
	r := &ph.res.Phases[i]
	r.ActualStartS = time.Since(ph.start).Seconds()
	if ph.opts.PID > 0 {
		bench.ResetPeak(ph.opts.PID)
	}
	ph.calls, _ = ph.a.upstreamCalls(ctx)
	ph.restarts, _ = ph.a.faults(ctx)
	for _, f := range s.Faults {
		out := FaultOutcome{Spec: f}
		id, err := ph.a.inject(ctx, f)
		if err != nil {
			out.Error = err.Error()
			ph.logf("%s: %v", s.Name, err)
		}
		out.ID = id
		r.Faults = append(r.Faults, out)
	}
	if s.Knobs != "" {
		if err := ph.a.control(ctx, s.Knobs); err != nil {
			r.Error = err.Error()
			ph.logf("%s: %v", s.Name, err)
		}
	}
	ph.logf("%5.1fs %s", r.ActualStartS, s.Name)
}

// removeFaults reads how often the phase's faults fired and removes them.
func (ph *phaser) removeFaults(ctx context.Context, i int) {
	r := &ph.res.Phases[i]
	report, err := ph.a.faults(ctx)
	for j := range r.Faults {
		f := &r.Faults[j]
		if f.ID == "" {
			continue
		}
		if err == nil {
			if n, ok := report.fired(f.ID); ok {
				f.Fired = n
			} else {
				f.Fired = -1 // gone from the list: not known
			}
		}
		if err := ph.a.remove(ctx, f.ID); err != nil && f.Error == "" {
			f.Error = err.Error()
		}
	}
	r.RemovedS = time.Since(ph.start).Seconds()
}

// healthyPoll is how often /health is read while waiting for healthy.
const healthyPoll = 20 * time.Millisecond

// healthyAfter polls /health until it says healthy and returns the
// milliseconds since from; -1 if it did not by until. It asks at least
// once, however late.
func healthyAfter(ctx context.Context, a *api, from, until time.Time) float64 {
	for ctx.Err() == nil {
		if status, _ := a.health(ctx); status == Healthy {
			return float64(time.Since(from).Microseconds()) / 1000
		}
		if !time.Now().Add(healthyPoll).Before(until) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(healthyPoll):
		}
	}
	return -1
}

// end resets deersim after an upstream phase and records the phase's
// upstream calls, restarts, escalations and peak RSS.
func (ph *phaser) end(ctx context.Context, i int, s PhaseSpec) {
	r := &ph.res.Phases[i]
	if s.Knobs != "" {
		if err := ph.a.control(ctx, `{"error_rate": 0, "reset_rate": 0, "hang_rate": 0}`); err != nil && r.Error == "" {
			r.Error = err.Error()
		}
	}
	if calls, err := ph.a.upstreamCalls(ctx); err == nil {
		r.UpstreamCalls = calls - ph.calls
	}
	if fr, err := ph.a.faults(ctx); err == nil {
		r.Restarts = diffRestarts(ph.restarts.Restarts, fr.Restarts)
		r.Escalations = fr.Escalations - ph.restarts.Escalations
	}
	if ph.opts.PID > 0 {
		if u, err := bench.TreeUsage(ph.opts.PID); err == nil {
			r.PeakRSS = u.PeakRSS
		}
	}
	r.ActualEndS = time.Since(ph.start).Seconds()
}

// diffRestarts is after − before per actor, leaving out actors without
// restarts in between.
func diffRestarts(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for actor, n := range after {
		if d := n - before[actor]; d > 0 {
			out[actor] = d
		}
	}
	return out
}

// sample reads /health and /faults every interval until ctx ends.
func sample(ctx context.Context, a *api, start time.Time, every time.Duration) []Sample {
	var out []Sample
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s := Sample{T: time.Since(start).Seconds(), Restarts: -1, Escalations: -1}
		s.Health, s.Restarting = a.health(ctx)
		if fr, err := a.faults(ctx); err == nil {
			s.Restarts, s.Escalations = fr.restartTotal(), fr.Escalations
		}
		if ctx.Err() != nil {
			return out
		}
		out = append(out, s)
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

// Failed reports whether the drill lost or duplicated anything: the
// conditions under which deerchaos exits non-zero.
func (res *Results) Failed() bool {
	return res.Total.Lost > 0 || res.Total.Duplicates > 0 || res.Interrupted
}

// restartsByKind folds actor names into their kinds: worker/3 and worker/7
// into worker/*, breaker/sim/HOST:PORT into breaker/sim/*.
func restartsByKind(m map[string]int) map[string]int {
	out := map[string]int{}
	for _, actor := range sortedNames(m) {
		out[actorKind(actor)] += m[actor]
	}
	return out
}

func sortedNames(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// actorKind is the kind of a SPEC §6 actor name: worker/N is worker/*,
// breaker/U/E is breaker/U/*; other names are their own kind.
func actorKind(name string) string {
	switch {
	case strings.HasPrefix(name, "worker/"):
		return "worker/*"
	case strings.HasPrefix(name, "breaker/"):
		if i := strings.LastIndexByte(name, '/'); i > len("breaker/") {
			return name[:i] + "/*"
		}
	}
	return name
}
