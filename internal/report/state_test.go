package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

var allStates = []string{Healthy, Degraded, Disabled, Restarting, Down, NotResponding}

// answerIn is the answer of an actor in state, as the runtime gathers it.
func answerIn(name, state string) Answer {
	a := Answer{Entry: supervisor.Entry{Name: name, State: supervisor.Running}}
	switch state {
	case Healthy, Degraded, Disabled:
		a.Status = &messages.StatusReport{Actor: name, State: state}
		a.Stats = &messages.StatsReport{Actor: name}
	case Restarting:
		a.Entry.State, a.Entry.LastFailure, a.Entry.Restarts = supervisor.Restarting, "boom", 1
	case Down:
		a.Entry.State, a.Entry.LastFailure, a.Entry.Restarts = supervisor.Stopped, "gave up", 3
	case NotResponding:
	default:
		panic("unknown state " + state)
	}
	return a
}

func input(enabled bool, answers []Answer) Input {
	cfg := conf.Default()
	cfg.EnableAdvancedOptimization = enabled
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return Input{Config: cfg, Now: t0.Add(time.Minute), Started: t0, Answers: answers}
}

// The actors of each advanced component in the agreement test: three each,
// so that every combination of six states over them is 216 cases.
var componentActors = map[string][]string{
	"parallel_executor": {"router", "worker/1", "worker/2"},
	"rate_limiter":      {"limiter/a", "limiter/b", "limiter/c"},
	"memory_manager":    {"cache/l1", "cache/l2", "cache/l3"},
	"error_recovery":    {"breaker/a", "breaker/b/1", "breaker/b/2"},
}

// others are actors in no advanced component.
var others = []string{"deer", "executor", "pool/a", "batch/a", "metrics"}

// wantAdvanced is SPEC's mapping, written out independently of the code:
// disabled when switched off or when every actor says so; restarting when
// an actor is restarting, or a non-worker is down or silent (a lost worker
// is lost capacity); active otherwise.
func wantAdvanced(enabled bool, names, states []string) string {
	if !enabled {
		return "disabled"
	}
	allDisabled := true
	for i, st := range states {
		worker := strings.HasPrefix(names[i], "worker/")
		if st == Restarting || (!worker && (st == Down || st == NotResponding)) {
			return "restarting"
		}
		allDisabled = allDisabled && st == Disabled
	}
	if allDisabled {
		return "disabled"
	}
	return "active"
}

// TestHealthAndMetricsAgreeOnAdvancedComponents: for every combination of
// the six actor states over a component's actors, with advanced
// optimization on and off, /health's advanced_components and /metrics'
// status fields say the same, and it is one of SPEC's three states.
func TestHealthAndMetricsAgreeOnAdvancedComponents(t *testing.T) {
	n := 0
	for _, key := range slices.Sorted(maps.Keys(componentActors)) {
		names := componentActors[key]
		for _, enabled := range []bool{true, false} {
			for i := range len(allStates) * len(allStates) * len(allStates) {
				states := []string{allStates[i%6], allStates[i/6%6], allStates[i/36]}
				var answers []Answer
				for j, name := range names {
					answers = append(answers, answerIn(name, states[j]))
				}
				// The other components' actors vary too, so that no
				// component's state leaks into another's.
				for j, name := range others {
					answers = append(answers, answerIn(name, allStates[(i+j)%6]))
				}
				for k, ns := range componentActors {
					if k != key {
						for j, name := range ns {
							answers = append(answers, answerIn(name, allStates[(i+j+1)%6]))
						}
					}
				}
				in := input(enabled, answers)
				h, m := Health(in), Metrics(in, SystemInfo{})
				adv := m.AdvancedOptimizations
				fromMetrics := map[string]string{
					"parallel_executor": adv.ParallelExecutor.Status,
					"rate_limiter":      adv.RateLimiter.Status,
					"memory_manager":    adv.MemoryManager.Status,
					"error_recovery":    adv.ErrorRecovery.Status,
				}
				if len(h.AdvancedComponents) != len(fromMetrics) {
					t.Fatalf("/health has advanced components %v, /metrics %v", h.AdvancedComponents, fromMetrics)
				}
				for k, got := range h.AdvancedComponents {
					if fromMetrics[k] != got {
						t.Errorf("%s=%v enabled=%v: /health %s = %q, /metrics status = %q", key, states, enabled, k, got, fromMetrics[k])
					}
					if got != "active" && got != "disabled" && got != "restarting" {
						t.Errorf("%s=%v enabled=%v: %s = %q, not one of SPEC's three", key, states, enabled, k, got)
					}
				}
				if want := wantAdvanced(enabled, names, states); h.AdvancedComponents[key] != want {
					t.Errorf("%s=%v enabled=%v: %q, want %q", key, states, enabled, h.AdvancedComponents[key], want)
				}
				n++
			}
		}
	}
	if n != 4*2*216 {
		t.Fatalf("ran %d cases, want %d", n, 4*2*216)
	}
}

func TestActorState(t *testing.T) {
	running := supervisor.Entry{Name: "limiter/a", State: supervisor.Running, Restarts: 2}
	for _, tc := range []struct {
		name string
		a    Answer
		want ActorHealth
	}{
		{"its own report", Answer{Entry: running, Status: &messages.StatusReport{State: Degraded, Detail: "hot"}},
			ActorHealth{State: Degraded, Detail: "hot", Restarts: 2}},
		{"silent", Answer{Entry: running}, ActorHealth{State: NotResponding, Restarts: 2}},
		{"silent to status, answered stats", Answer{Entry: running, Stats: &messages.StatsReport{}}, ActorHealth{State: NotResponding, Restarts: 2}},
		{"supervision first: restarting", Answer{
			Entry:  supervisor.Entry{State: supervisor.Restarting, LastFailure: "boom", Restarts: 3},
			Status: &messages.StatusReport{State: Healthy},
		}, ActorHealth{State: Restarting, Detail: "boom", Restarts: 3}},
		{"supervision first: stopped", Answer{Entry: supervisor.Entry{State: supervisor.Stopped, LastFailure: "gave up"}},
			ActorHealth{State: Down, Detail: "gave up"}},
	} {
		if got := ActorState(tc.a); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestAdvancedStateUsesOnlySPECsThreeStates(t *testing.T) {
	for _, tc := range []struct {
		component string
		enabled   bool
		want      string
	}{
		{Healthy, true, "active"},
		{Degraded, true, "active"},
		{Restarting, true, "restarting"},
		{Down, true, "restarting"},
		{Disabled, true, "disabled"}, // every actor of it says so
		{Down, false, "disabled"},
		{Healthy, false, "disabled"},
	} {
		if got := advancedState(tc.component, tc.enabled); got != tc.want {
			t.Errorf("advancedState(%q, %v) = %q, want %q", tc.component, tc.enabled, got, tc.want)
		}
	}
}

// TestHealthComponentsAndStatus: basic components aggregate worst first,
// workers are capacity, and the overall status follows SPEC §4.
func TestHealthComponentsAndStatus(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{
			"deer": Healthy, "router": Healthy, "worker/1": Healthy, "worker/2": Healthy,
			"pool/a": Healthy, "batch/a": Disabled, "limiter/a": Healthy, "cache/l1": Healthy, "breaker/a": Healthy,
		}
	}
	for _, tc := range []struct {
		name       string
		change     map[string]string
		components map[string]string
		status     string
	}{
		{"all well; a batcher with nothing to batch is healthy", nil,
			map[string]string{"connection_pool": Healthy, "request_queue": Healthy, "batch_processor": Healthy}, "healthy"},
		{"a worker down is lost capacity", map[string]string{"worker/2": Down},
			map[string]string{"connection_pool": Healthy, "request_queue": Degraded, "batch_processor": Healthy}, "degraded"},
		{"a silent worker too", map[string]string{"worker/1": NotResponding},
			map[string]string{"connection_pool": Healthy, "request_queue": Degraded, "batch_processor": Healthy}, "degraded"},
		{"a pool down", map[string]string{"pool/a": Down},
			map[string]string{"connection_pool": Down, "request_queue": Healthy, "batch_processor": Healthy}, "unhealthy"},
		{"a silent router", map[string]string{"router": NotResponding},
			map[string]string{"connection_pool": Healthy, "request_queue": Down, "batch_processor": Healthy}, "unhealthy"},
		{"a restarting batcher", map[string]string{"batch/a": Restarting},
			map[string]string{"connection_pool": Healthy, "request_queue": Healthy, "batch_processor": Restarting}, "degraded"},
		{"restarting beats degraded", map[string]string{"worker/1": Down, "router": Restarting},
			map[string]string{"connection_pool": Healthy, "request_queue": Restarting, "batch_processor": Healthy}, "degraded"},
		{"an actor outside every component, silent", map[string]string{"deer": NotResponding},
			map[string]string{"connection_pool": Healthy, "request_queue": Healthy, "batch_processor": Healthy}, "unhealthy"},
		{"a degraded limiter", map[string]string{"limiter/a": Degraded},
			map[string]string{"connection_pool": Healthy, "request_queue": Healthy, "batch_processor": Healthy}, "degraded"},
	} {
		states := base()
		for k, v := range tc.change {
			states[k] = v
		}
		var answers []Answer
		for name, st := range states {
			answers = append(answers, answerIn(name, st))
		}
		h := Health(input(true, answers))
		if fmt.Sprint(h.Components) != fmt.Sprint(tc.components) || h.Status != tc.status {
			t.Errorf("%s: components %v status %q, want %v %q", tc.name, h.Components, h.Status, tc.components, tc.status)
		}
		if got := h.Actors["worker/2"].State; got != states["worker/2"] {
			t.Errorf("%s: actors[worker/2] = %q, want %q", tc.name, got, states["worker/2"])
		}
	}
}
