package deer

import (
	"context"
	"errors"
	"time"

	"github.com/deer-runtime/deer/internal/faults"
)

// Fault is a failure to inject into the running actors (SPEC §9): it acts
// inside the real actor's receive, on messages it sends itself, never on
// the actor library's lifecycle messages.
type Fault struct {
	// Actor is a SPEC §6 name ("cache/l1", "limiter/sim",
	// "breaker/sim/127.0.0.1:8001"), a prefix ending in "*" ("worker/*",
	// "cache/*"), or "*" for every actor. It must match a running actor.
	Actor string
	// Kind is "panic" (the supervisor restarts the actor after a backoff
	// and redelivers the message), "delay" (the actor holds the message,
	// and its mailbox, for Delay) or "drop" (the message is lost).
	Kind string
	// Count is how many matching messages the fault acts on; 0: until
	// removed.
	Count int
	// Delay is how long a "delay" fault holds each message: > 0, ≤ 60 s.
	Delay time.Duration
	// Message, when set, restricts the fault to messages of that Go type,
	// named without package or pointer: "SubmitTask", "Run", "CacheLookup".
	Message string
}

// FaultError is an InjectFault refusal. Field names what is wrong as the
// HTTP API does: "actor", "kind", "count", "delay_ms" or "message".
type FaultError = faults.FieldError

// FaultStatus is an injected fault and what it did so far.
type FaultStatus struct {
	ID string
	Fault
	Fired  int  // messages it acted on
	Active bool // false once it has fired Count times
}

// FaultsReport is what the faults did: each one, and what supervision did
// about them.
type FaultsReport struct {
	Faults []FaultStatus // in injection order, spent ones included
	// Restarts counts restarts per actor, for actors restarted at least once.
	Restarts map[string]int
	// Escalations counts failures passed up to a supervisor's parent (an
	// actor over its restart intensity).
	Escalations int
}

// ErrFaultInjectionOff is InjectFault's answer when the runtime started
// without the fault hook: neither debug_mode nor server.fault_injection in
// its starting configuration, nor WithFaultInjection.
var ErrFaultInjectionOff = errors.New("deer: fault injection is off: the fault hook is installed at start, with debug_mode, server.fault_injection or deer.WithFaultInjection()")

// InjectFault adds f and returns its id ("f1", "f2", …). It acts at once,
// on every actor whose name f.Actor matches, workers and actors respawned
// later included, until it has fired f.Count times or is removed. A refused
// fault is a *FaultError.
func (rt *Runtime) InjectFault(ctx context.Context, f Fault) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if rt.receive == nil {
		return "", ErrFaultInjectionOff
	}
	spec := faults.Spec{Actor: f.Actor, Kind: faults.Kind(f.Kind), Count: f.Count, Delay: f.Delay, Message: f.Message}
	added, err := rt.faults.Add(spec, rt.faultTargets())
	if err != nil {
		return "", err
	}
	rt.log.Warn().Str("fault", added.ID).Str("actor", f.Actor).Str("kind", f.Kind).Int("count", f.Count).
		Dur("delay", f.Delay).Str("message", f.Message).Msg("fault injected")
	return added.ID, nil
}

// Faults reports the injected faults, spent ones included, with the
// restarts and escalations of the actors.
func (rt *Runtime) Faults() FaultsReport {
	rep := FaultsReport{Restarts: map[string]int{}, Escalations: rt.reg.Escalations()}
	for _, f := range rt.faults.List() {
		rep.Faults = append(rep.Faults, FaultStatus{
			ID:     f.ID,
			Fault:  Fault{Actor: f.Actor, Kind: string(f.Kind), Count: f.Count, Delay: f.Delay, Message: f.Message},
			Fired:  f.Fired,
			Active: f.Active,
		})
	}
	for _, e := range rt.reg.Entries() {
		if e.Restarts > 0 {
			rep.Restarts[e.Name] = e.Restarts
		}
	}
	return rep
}

// RemoveFault removes the fault id, spent or not; false when there is none.
func (rt *Runtime) RemoveFault(id string) bool {
	ok := rt.faults.Remove(id)
	if ok {
		rt.log.Info().Str("fault", id).Msg("fault removed")
	}
	return ok
}

// ClearFaults removes every fault and returns how many there were.
func (rt *Runtime) ClearFaults() int {
	n := rt.faults.Clear()
	rt.log.Info().Int("faults", n).Msg("faults cleared")
	return n
}

// faultTargets are the names a fault can reach: the registered actors that
// run through rt.receive, i.e. all but the supervisors (the root and its
// groups).
func (rt *Runtime) faultTargets() []string {
	var names []string
	for _, e := range rt.reg.Entries() {
		if e.Group != "" && e.Group != rootName {
			names = append(names, e.Name)
		}
	}
	return names
}
