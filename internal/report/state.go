package report

import (
	"strings"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
	"github.com/deer-runtime/deer/supervisor"
)

// The six states of an actor in /health's "actors" detail: the three an
// actor reports about itself in a StatusReport, and three that supervision
// or silence adds.
const (
	Healthy       = messages.StateHealthy  // it says it works normally
	Degraded      = messages.StateDegraded // it says it works, over a threshold
	Disabled      = messages.StateDisabled // it says configuration switched it off
	Restarting    = "restarting"           // it crashed; its supervisor restarts it after a backoff
	Down          = "down"                 // its supervisor stopped it for good
	NotResponding = "not_responding"       // it is running but did not answer in time
)

// Active is an advanced component that is on and working (SPEC §4: advanced
// components are active, disabled or restarting).
const Active = "active"

// Answer is what the runtime learned about one registered actor when it
// asked it.
type Answer struct {
	Entry  supervisor.Entry       // supervision's view; refreshed after the wait when a reply is missing
	Status *messages.StatusReport // the reply to StatusQuery; nil when none came in time
	Stats  *messages.StatsReport  // the reply to StatsQuery (/metrics only); nil when none came
}

// Input is what a report is made from.
type Input struct {
	Config  *conf.Config // the configuration in force
	Now     time.Time    // when the actors were asked
	Started time.Time    // when the runtime started
	Answers []Answer     // one per registered actor
}

// ActorHealth is one actor's line in /health.
type ActorHealth struct {
	State    string `json:"state"`
	Detail   string `json:"detail,omitempty"`
	Restarts int    `json:"restarts"`
}

// ActorState is the state of the actor a answers for: supervision's word
// when it is restarting or stopped, else its own StatusReport, else
// not_responding.
func ActorState(a Answer) ActorHealth {
	h := ActorHealth{Restarts: a.Entry.Restarts}
	switch {
	case a.Entry.State == supervisor.Restarting:
		h.State, h.Detail = Restarting, a.Entry.LastFailure
	case a.Entry.State == supervisor.Stopped:
		h.State, h.Detail = Down, a.Entry.LastFailure
	case a.Status == nil:
		h.State = NotResponding
	default:
		h.State, h.Detail = a.Status.State, a.Status.Detail
	}
	return h
}

// actorStates maps every answering actor's name to its state.
func actorStates(answers []Answer) map[string]ActorHealth {
	out := make(map[string]ActorHealth, len(answers))
	for _, a := range answers {
		out[a.Entry.Name] = ActorState(a)
	}
	return out
}

// component groups actors by the SPEC name prefixes it aggregates
// (docs/architecture.md, "Answers over HTTP").
type component struct {
	key      string
	prefixes []string
}

var (
	basicComponents = []component{
		{"connection_pool", []string{"pool/"}},
		{"request_queue", []string{"router", "worker/"}},
		{"batch_processor", []string{"batch/"}},
	}
	advancedComponents = []component{
		{"parallel_executor", []string{"router", "worker/"}},
		{"rate_limiter", []string{"limiter/"}},
		{"memory_manager", []string{"cache/"}},
		{"error_recovery", []string{"breaker/"}},
	}
)

func (c component) has(name string) bool {
	for _, p := range c.prefixes {
		if name == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(name, p)) {
			return true
		}
	}
	return false
}

// isWorker says whether name is one of the router's workers: a pool, of
// which a lost one is lost capacity, not a lost component.
func isWorker(name string) bool { return strings.HasPrefix(name, "worker/") }

// componentState aggregates the actors of one component: the worst state
// wins (down > restarting > degraded). Workers are a pool: one down or not
// answering means less capacity (degraded). A component whose actors all say
// disabled is disabled; one with no actors (no upstream configured) has
// nothing wrong with it.
func componentState(c component, actors map[string]ActorHealth) string {
	var total, down, restarting, degraded, disabled int
	for name, h := range actors {
		if !c.has(name) {
			continue
		}
		total++
		switch h.State {
		case Down, NotResponding:
			if isWorker(name) {
				degraded++
			} else {
				down++
			}
		case Restarting:
			restarting++
		case Degraded:
			degraded++
		case Disabled:
			disabled++
		}
	}
	switch {
	case down > 0:
		return Down
	case restarting > 0:
		return Restarting
	case degraded > 0:
		return Degraded
	case total > 0 && disabled == total:
		return Disabled
	}
	return Healthy
}

// basicStates is /health's components: SPEC's healthy, degraded,
// restarting, down. A basic component switched off by configuration (no
// upstream batches) has nothing wrong with it: healthy.
func basicStates(actors map[string]ActorHealth) map[string]string {
	out := make(map[string]string, len(basicComponents))
	for _, c := range basicComponents {
		st := componentState(c, actors)
		if st == Disabled {
			st = Healthy
		}
		out[c.key] = st
	}
	return out
}

// advancedStates is the one mapping of the advanced components onto SPEC's
// three states, used by /health's advanced_components and by /metrics'
// status fields alike:
//
//   - disabled when enable_advanced_optimization is false, or when every
//     actor of the component says it is disabled;
//   - restarting when an actor of it is restarting, down or not answering:
//     it is neither active nor disabled, and its supervisor restarts a
//     crashed actor (escalating if it must); the overall status
//     (unhealthy) and the actors map carry the detail;
//   - active otherwise (healthy or degraded).
func advancedStates(actors map[string]ActorHealth, enabled bool) map[string]string {
	out := make(map[string]string, len(advancedComponents))
	for _, c := range advancedComponents {
		out[c.key] = advancedState(componentState(c, actors), enabled)
	}
	return out
}

func advancedState(component string, enabled bool) string {
	switch {
	case !enabled, component == Disabled:
		return Disabled
	case component == Down, component == Restarting:
		return Restarting
	}
	return Active
}

// overallStatus is /health's status: unhealthy when a component, or any
// actor other than a worker, is down or not responding; degraded when
// anything is degraded or restarting; healthy otherwise.
func overallStatus(rep *HealthReport) string {
	status := "healthy"
	for _, states := range []map[string]string{rep.Components, rep.AdvancedComponents} {
		for _, s := range states {
			switch s {
			case Down:
				return "unhealthy"
			case Restarting, Degraded:
				status = "degraded"
			}
		}
	}
	for name, a := range rep.Actors {
		switch {
		case (a.State == Down || a.State == NotResponding) && !isWorker(name):
			return "unhealthy"
		case a.State == Restarting || a.State == Degraded:
			status = "degraded"
		}
	}
	return status
}
