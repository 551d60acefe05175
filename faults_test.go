package deer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// Fault injection through the real actors, with deersim over loopback. The
// runtime runs on a fake clock that the tests move on by hand: to end a
// restart's backoff, or to let the router's watchdog find a task whose
// message was dropped. Nothing is waited for by sleeping.

// faultTaskTimeout is every task's own timeout here: the router's watchdog
// answers a task stuck running at this plus a second.
const faultTaskTimeout = 10 * time.Second

// faultTasks is a mix that reaches every actor on the task path: cacheable
// chats (L1 miss, lookups in L2 and L3, stores in L1 and L3), one chat that
// is not cached, and embeddings (looked up, then batched: priority 0 flushes
// its batch at once). Distinct contents: nothing is coalesced.
func faultTasks() []*messages.Task {
	tasks := []*messages.Task{
		chatTask("0", "a"), chatTask("0", "b"), chatTask("0", "c"), chatTask("", "d"),
		embedTask("e"), embedTask("f"),
	}
	for _, task := range tasks {
		task.Timeout, task.Priority = faultTaskTimeout, 0
	}
	return tasks
}

// submitAll submits every task at once; each result comes back on the
// channel (nil when Submit itself failed), checked to be its task's.
func submitAll(t *testing.T, rt *deer.Runtime, tasks []*messages.Task) <-chan *messages.TaskResult {
	results := make(chan *messages.TaskResult, len(tasks))
	for _, task := range tasks {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*actortest.Wait)
			defer cancel()
			res, err := rt.Submit(ctx, task)
			if err != nil {
				t.Errorf("task %s: %v", task.ID, err)
			} else if res.ID != task.ID {
				t.Errorf("task %s was answered with the result of %s", task.ID, res.ID)
			}
			results <- res
		}()
	}
	return results
}

// collect takes n results and counts them by outcome: "succeeded" or the
// error code.
func collect(t *testing.T, results <-chan *messages.TaskResult, n int, into map[string]int) {
	t.Helper()
	timeout := time.After(2 * actortest.Wait)
	for range n {
		select {
		case res := <-results:
			switch {
			case res == nil:
				into["no answer"]++
			case res.Err != nil:
				into[res.Err.Code]++
			default:
				into[res.Status]++
			}
		case <-timeout:
			t.Fatalf("timed out waiting for results; so far %v", into)
		}
	}
}

// tasksAnswered sums deer_tasks_total over its labels: one per answer the
// router gave.
func tasksAnswered(rt *deer.Runtime) float64 {
	sum := 0.0
	for _, line := range strings.Split(prometheusText(rt), "\n") {
		if rest, ok := strings.CutPrefix(line, "deer_tasks_total{"); ok {
			_, v, _ := strings.Cut(rest, "} ")
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				sum += f
			}
		}
	}
	return sum
}

func fired(rt *deer.Runtime, id string) int {
	for _, f := range rt.Faults().Faults {
		if f.ID == id {
			return f.Fired
		}
	}
	return -1
}

// restartingMatch waits until an actor whose name pattern matches is
// restarting and returns its name.
func restartingMatch(t *testing.T, rt *deer.Runtime, pattern string) string {
	t.Helper()
	var name string
	actortest.Eventually(t, pattern+" to be restarting", func() bool {
		for _, e := range rt.Registry().Entries() {
			if e.State == supervisor.Restarting && (e.Name == pattern || strings.HasSuffix(pattern, "*") && strings.HasPrefix(e.Name, strings.TrimSuffix(pattern, "*"))) {
				name = e.Name
				return true
			}
		}
		return false
	})
	return name
}

// driveUntil moves clk on by the restart backoff whenever a timer that
// short is pending (a restart, or the router's one-second lookup
// watchdog), until cond holds. Longer timers (the running tasks'
// watchdog) are left alone.
func driveUntil(t *testing.T, clk *clock.Fake, what string, cond func() bool) {
	t.Helper()
	actortest.Eventually(t, what, func() bool {
		if cond() {
			return true
		}
		if slices.ContainsFunc(clk.Pending(), func(d time.Duration) bool { return d <= backoff }) {
			clk.Advance(backoff)
		}
		return false
	})
}

// faultTarget is an actor kind and the message its faults act on.
type faultTarget struct {
	actor   string // the fault's pattern
	message string // its filter; "": the first message, which the test sends by asking /health
	drop    string // the filter for a drop, when losing another message says more
	// stall is how far the clock must move before the task whose message
	// was dropped is answered (0: the drop does not hold any task up), and
	// code what it is answered ("" succeeded).
	stall time.Duration
	code  string
}

var faultTargets = []faultTarget{
	// A dropped SubmitTask is never accepted: the caller's own deadline
	// bounds it. A dropped Finished leaves the task running until the
	// watchdog answers it.
	{actor: "router", message: "SubmitTask", drop: "Finished", stall: faultTaskTimeout + time.Second, code: messages.CodeTimeout},
	{actor: "worker/*", message: "Run", stall: faultTaskTimeout + time.Second, code: messages.CodeTimeout},
	{actor: "pool/sim"},
	{actor: "limiter/sim", message: "ReportOutcome"},
	{actor: "breaker/*"},
	{actor: "batch/sim", message: "EnqueueBatchItem", stall: faultTaskTimeout, code: messages.CodeTimeout},
	{actor: "cache/l1", message: "CachePut"},
	// A lookup unanswered for a second is a miss: the task goes on.
	{actor: "cache/l2", message: "CacheLookup", stall: time.Second},
	{actor: "cache/l3", message: "CacheLookup", stall: time.Second},
	{actor: "metrics"},
}

// Each kind of fault against each kind of actor, on the real actors: every
// task is answered exactly once, with its own result; a panic shows as
// restarting in /health until the backoff ends, then healthy; a dropped
// message is recovered by the router's watchdog.
func TestFaultsInEveryActorKindLoseNoTask(t *testing.T) {
	for _, target := range faultTargets {
		for _, kind := range []string{"panic", "delay", "drop"} {
			t.Run(strings.ReplaceAll(target.actor, "/", "_")+"/"+kind, func(t *testing.T) {
				_, url := simServer(t, sim.DefaultKnobs())
				clk := clock.NewFake(t0)
				rt := start(t, cacheConfig(t, url), deer.WithClock(clk), deer.WithSupervisionPolicy(testPolicy(10)), deer.WithFaultInjection())
				ctx := context.Background()

				f := deer.Fault{Actor: target.actor, Kind: kind, Count: 1, Message: target.message}
				switch kind {
				case "delay":
					f.Delay = 20 * time.Millisecond
				case "drop":
					if target.drop != "" {
						f.Message = target.drop
					}
				}
				id, err := rt.InjectFault(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				tasks := faultTasks()
				results := submitAll(t, rt, tasks)
				actortest.Eventually(t, "the fault to fire", func() bool {
					if f.Message == "" {
						rt.Health(ctx) // a StatusQuery to every actor
					}
					return fired(rt, id) == 1
				})

				got := map[string]int{}
				want := map[string]int{messages.TaskSucceeded: len(tasks)}
				var crashed string
				switch {
				case kind == "panic":
					crashed = restartingMatch(t, rt, target.actor)
					if h := rt.Health(ctx).Actors[crashed]; h.State != "restarting" || !strings.Contains(h.Detail, "injected panic") {
						t.Errorf("/health of %s during its backoff: %+v", crashed, h)
					}
					driveUntil(t, clk, crashed+" to run again", func() bool { return entry(t, rt, crashed).State == supervisor.Running })
				case kind == "drop" && target.stall > 0:
					// Everything else is answered; the clock has not moved.
					collect(t, results, len(tasks)-1, got)
					actortest.Eventually(t, "the stalled task's timer", func() bool {
						return slices.ContainsFunc(clk.Pending(), func(d time.Duration) bool { return d <= target.stall })
					})
					clk.Advance(target.stall)
					if target.code != "" {
						want[messages.TaskSucceeded]--
						want[target.code] = 1
					}
				}
				collect(t, results, len(tasks)-countAll(got), got)
				if !equalCounts(got, want) {
					t.Errorf("outcomes %v, want %v", got, want)
				}
				actortest.Eventually(t, "no task in flight", func() bool { return inFlight(rt) == 0 })
				if n := tasksAnswered(rt); n != float64(len(tasks)) {
					t.Errorf("the router answered %v times for %d tasks", n, len(tasks))
				}

				rep := rt.Faults()
				if len(rep.Faults) != 1 || rep.Faults[0].Fired != 1 || rep.Faults[0].Active {
					t.Errorf("faults: %+v, want the one fault fired once and spent", rep.Faults)
				}
				if kind == "panic" {
					if rep.Restarts[crashed] != 1 {
						t.Errorf("restarts %v, want 1 for %s", rep.Restarts, crashed)
					}
					actortest.Eventually(t, "/health to be healthy", func() bool { return rt.Health(ctx).Status == "healthy" })
				} else if len(rep.Restarts) != 0 {
					t.Errorf("a %s fault restarted %v", kind, rep.Restarts)
				}
			})
		}
	}
}

func countAll(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func equalCounts(got, want map[string]int) bool {
	for k, v := range want {
		if v != 0 && got[k] != v {
			return false
		}
	}
	for k, v := range got {
		if want[k] != v {
			return false
		}
	}
	return true
}

// A fault that crashes an actor more often than the restart intensity
// allows escalates: the actor's group is restarted by the root, with all
// its children, and comes back once the fault is spent. The task that met
// the fault is still answered.
func TestFaultOverRestartIntensityEscalatesAndTheGroupComesBack(t *testing.T) {
	const maxRestarts = 2
	_, url := simServer(t, sim.DefaultKnobs())
	clk := clock.NewFake(t0)
	rt := start(t, cacheConfig(t, url), deer.WithClock(clk), deer.WithSupervisionPolicy(testPolicy(maxRestarts)), deer.WithFaultInjection())
	ctx := context.Background()
	// The message is redelivered after each restart and crashes the actor
	// again: the third failure is over the limit of two.
	id, err := rt.InjectFault(ctx, deer.Fault{Actor: "cache/l2", Kind: "panic", Count: maxRestarts + 1, Message: "CacheLookup"})
	if err != nil {
		t.Fatal(err)
	}
	task := chatTask("0", "escalate")
	task.Timeout = faultTaskTimeout
	results := submitAll(t, rt, []*messages.Task{task})
	driveUntil(t, clk, "the cache group to be restarting", func() bool {
		return rt.Faults().Escalations == 1 && entry(t, rt, "cache").State == supervisor.Restarting
	})
	rep := rt.Faults()
	if f := rep.Faults[0]; f.ID != id || f.Fired != maxRestarts+1 || f.Active {
		t.Errorf("fault %+v, want fired %d times and spent", f, maxRestarts+1)
	}
	if rep.Restarts["cache/l2"] != maxRestarts {
		t.Errorf("restarts %v, want %d for cache/l2", rep.Restarts, maxRestarts)
	}
	if h := rt.Health(ctx); h.Actors["cache"].State != "restarting" || h.Status == "healthy" {
		t.Errorf("/health while the cache group restarts: %s, cache %+v", h.Status, h.Actors["cache"])
	}

	driveUntil(t, clk, "the cache group and its children to run again", func() bool {
		for _, name := range []string{"cache", "cache/l1", "cache/l2", "cache/l3"} {
			if entry(t, rt, name).State != supervisor.Running {
				return false
			}
		}
		return true
	})
	got := map[string]int{}
	collect(t, results, 1, got)
	if got[messages.TaskSucceeded] != 1 {
		t.Errorf("the task that met the fault: %v", got)
	}
	if r := rt.Faults().Restarts["cache"]; r != 1 {
		t.Errorf("cache group restarts = %d, want 1", r)
	}
	actortest.Eventually(t, "/health to be healthy", func() bool { return rt.Health(ctx).Status == "healthy" })
	// The respawned tiers serve: the answer stored above is found again.
	if res := mustSubmit(t, rt, chatTask("0", "escalate")); !strings.HasPrefix(res.Cache, "hit") {
		t.Errorf("repeat after the group restart: cache %q, want a hit", res.Cache)
	}
}

func TestInjectFaultRefusesBadFaults(t *testing.T) {
	rt := start(t, cacheConfig(t, "http://127.0.0.1:1"), deer.WithFaultInjection())
	ctx := context.Background()
	for _, tc := range []struct {
		fault deer.Fault
		field string
	}{
		{deer.Fault{Actor: "cache/l9", Kind: "panic"}, "actor"},
		{deer.Fault{Actor: "executor", Kind: "panic"}, "actor"}, // a supervisor: faults reach components only
		{deer.Fault{Actor: "cache/l1", Kind: "melt"}, "kind"},
		{deer.Fault{Actor: "cache/l1", Kind: "drop", Count: -2}, "count"},
		{deer.Fault{Actor: "cache/l1", Kind: "delay"}, "delay_ms"},
		{deer.Fault{Actor: "cache/l1", Kind: "drop", Message: "messages.CachePut"}, "message"},
	} {
		_, err := rt.InjectFault(ctx, tc.fault)
		var fe *deer.FaultError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: error %v, want one naming %s", tc.fault, err, tc.field)
		}
	}
	if rep := rt.Faults(); len(rep.Faults) != 0 {
		t.Errorf("refused faults were kept: %+v", rep.Faults)
	}
	// Removing: one by id, then all.
	a, _ := rt.InjectFault(ctx, deer.Fault{Actor: "worker/*", Kind: "drop", Message: "Ping"})
	if _, err := rt.InjectFault(ctx, deer.Fault{Actor: "*", Kind: "delay", Delay: time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if !rt.RemoveFault(a) || rt.RemoveFault(a) {
		t.Errorf("RemoveFault(%s): want true, then false", a)
	}
	if n := rt.ClearFaults(); n != 1 || len(rt.Faults().Faults) != 0 {
		t.Errorf("ClearFaults = %d, want 1 and none left", n)
	}
}
