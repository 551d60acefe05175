package supervisor

import (
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// State is what supervision knows about an actor.
type State int

const (
	Running    State = iota // processing messages
	Restarting              // crashed; its restart is scheduled after a backoff
	Stopped                 // stopped for good (gave up, or shut down)
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Restarting:
		return "restarting"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Entry is one supervised actor as the registry saw it.
type Entry struct {
	Name          string // SPEC §6 name, e.g. "pool/sim", "worker/3"
	Group         string // the supervisor it runs under
	PID           *actor.PID
	State         State
	Restarts      int       // restarts since it was registered
	LastFailure   string    // the panic value of the last crash
	LastFailureAt time.Time // when it crashed last
}

// Registry maps SPEC actor names to PIDs and supervision state. Supervisors
// and the router write it; /health, /metrics and fault injection read it.
// It is safe for concurrent use: every method takes the lock.
type Registry struct {
	mu          sync.RWMutex
	byName      map[string]*Entry
	byID        map[string]string // PID.Id → name
	escalations int               // across names: a worker's entry goes when the router restarts
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*Entry{}, byID: map[string]string{}}
}

// Register records a (re)spawned actor as running. Restart counts survive
// re-registration under the same name.
func (r *Registry) Register(name, group string, pid *actor.PID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byName[name]
	if !ok {
		e = &Entry{Name: name}
		r.byName[name] = e
	} else if e.PID != nil {
		delete(r.byID, e.PID.Id)
	}
	e.Group, e.PID, e.State = group, pid, Running
	r.byID[pid.Id] = name
}

// Unregister forgets an actor that was removed on purpose (a worker retired
// by a smaller max_workers).
func (r *Registry) Unregister(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byName[name]; ok {
		if e.PID != nil {
			delete(r.byID, e.PID.Id)
		}
		delete(r.byName, name)
	}
}

// NameOf returns the SPEC name of pid.
func (r *Registry) NameOf(pid *actor.PID) (string, bool) {
	if pid == nil {
		return "", false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	name, ok := r.byID[pid.Id]
	return name, ok
}

// PID returns the PID registered under name.
func (r *Registry) PID(name string) (*actor.PID, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e, ok := r.byName[name]; ok {
		return e.PID, true
	}
	return nil, false
}

// Get returns a copy of the entry for name.
func (r *Registry) Get(name string) (Entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e, ok := r.byName[name]; ok {
		return *e, true
	}
	return Entry{}, false
}

// MarkRestarting records a crash of name and that its restart is pending.
func (r *Registry) MarkRestarting(name, reason string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byName[name]; ok {
		e.State = Restarting
		e.Restarts++
		e.LastFailure, e.LastFailureAt = reason, at
	}
}

// MarkFailed records a crash of name whose handling was passed up to its
// supervisor's parent: no restart is scheduled here, so none is counted
// (the escalation is: see Escalations); the state says restarting because
// the subtree is about to be restarted (or stopped) from above.
func (r *Registry) MarkFailed(name, reason string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.escalations++
	if e, ok := r.byName[name]; ok {
		e.State = Restarting
		e.LastFailure, e.LastFailureAt = reason, at
	}
}

// Escalations is how many failures were passed up to a supervisor's parent
// since the registry was made.
func (r *Registry) Escalations() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.escalations
}

// MarkRunning records that name is processing messages again.
func (r *Registry) MarkRunning(name string) {
	r.setState(name, Running)
}

// MarkStopped records that name was stopped for good.
func (r *Registry) MarkStopped(name string) {
	r.setState(name, Stopped)
}

func (r *Registry) setState(name string, s State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byName[name]; ok {
		e.State = s
	}
}

// Entries returns copies of every entry, sorted by name.
func (r *Registry) Entries() []Entry {
	r.mu.RLock()
	out := make([]Entry, 0, len(r.byName))
	for _, e := range r.byName {
		out = append(out, *e)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
