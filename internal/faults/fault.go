package faults

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// Kind is what a fault does to a message it matches.
type Kind string

const (
	// Panic crashes the actor: its supervisor restarts it after a backoff
	// and redelivers the message.
	Panic Kind = "panic"
	// Delay holds the message (and so the actor's mailbox) for Spec.Delay
	// before the actor handles it.
	Delay Kind = "delay"
	// Drop loses the message: the actor never sees it.
	Drop Kind = "drop"
)

// MaxDelay bounds a delay fault. A minute outlasts every timeout deer
// waits on by default (health asks, the lookup watchdog, retries) without
// wedging an actor for longer than a drill would notice.
const MaxDelay = time.Minute

// Spec is a fault as asked for.
type Spec struct {
	// Actor is a SPEC §6 name ("cache/l1", "breaker/sim/127.0.0.1:8001"), a
	// prefix ending in "*" ("worker/*"), or "*" for every actor.
	Actor string
	Kind  Kind
	// Count is how many matching messages the fault acts on; 0: until removed.
	Count int
	// Delay is how long a Delay fault holds each message.
	Delay time.Duration
	// Message, when set, restricts the fault to messages of that Go type,
	// named without package or pointer ("CacheLookup", "Run").
	Message string
}

// Fault is a fault in a Set: its spec, its id and how often it fired.
type Fault struct {
	ID string
	Spec
	Fired  int
	Active bool // false once it fired Count times
}

// FieldError is a refused Spec. Field is the API's name for what is wrong:
// "actor", "kind", "count", "delay_ms" or "message".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func refuse(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks s against the names of the actors a fault can reach now;
// a pattern must match at least one of them. The first problem found is
// returned as a *FieldError.
func Validate(s Spec, names []string) error {
	if err := validateActor(s.Actor, names); err != nil {
		return err
	}
	switch s.Kind {
	case Panic, Delay, Drop:
	default:
		return refuse("kind", "unknown kind %q: want panic, delay or drop", s.Kind)
	}
	if s.Count < 0 {
		return refuse("count", "count must be >= 0 (0: until removed); got %d", s.Count)
	}
	switch {
	case s.Kind == Delay && (s.Delay <= 0 || s.Delay > MaxDelay):
		return refuse("delay_ms", "a delay fault needs delay_ms > 0 and <= %d; got %d", MaxDelay.Milliseconds(), s.Delay.Milliseconds())
	case s.Kind != Delay && s.Delay != 0:
		return refuse("delay_ms", "delay_ms is only for kind delay, not %s", s.Kind)
	}
	if s.Message != "" && !isIdent(s.Message) {
		return refuse("message", "message must be a Go type name without package or pointer, e.g. CacheLookup; got %q", s.Message)
	}
	return nil
}

func validateActor(pattern string, names []string) error {
	if pattern == "" {
		return refuse("actor", "actor is required: an actor name such as cache/l1, a prefix such as worker/*, or *")
	}
	if i := strings.IndexByte(pattern, '*'); i >= 0 && i != len(pattern)-1 {
		return refuse("actor", "only a trailing * is allowed in an actor pattern; got %q", pattern)
	}
	for _, n := range names {
		if Match(pattern, n) {
			return nil
		}
	}
	return refuse("actor", "%q matches no running actor (running: %s)", pattern, strings.Join(names, ", "))
}

// Match reports whether an actor named name falls under pattern: the same
// name, or any name starting with what precedes a trailing "*".
func Match(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}

// TypeName is the name a Spec.Message filter compares with: the message's
// Go type without package and pointers.
func TypeName(msg any) string {
	t := reflect.TypeOf(msg)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.Name()
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(unicode.IsLetter(r) || r == '_' || i > 0 && unicode.IsDigit(r)) {
			return false
		}
	}
	return s != ""
}
