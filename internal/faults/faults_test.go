package faults

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/messages"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

var names = []string{"router", "worker/1", "worker/2", "pool/sim", "limiter/sim", "breaker/sim/127.0.0.1:8001",
	"batch/sim", "cache/l1", "cache/l2", "cache/l3", "metrics"}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"cache/l1", "cache/l1", true},
		{"cache/l1", "cache/l2", false},
		{"cache/l", "cache/l1", false}, // no implicit prefix
		{"cache/*", "cache/l3", true},
		{"cache/*", "cache", false},
		{"worker/*", "worker/12", true},
		{"breaker/sim/*", "breaker/sim/127.0.0.1:8001", true},
		{"breaker/sim/*", "breaker/simx/h", false},
		{"*", "metrics", true},
		{"*", "", true},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestTypeName(t *testing.T) {
	type local struct{}
	for _, tc := range []struct {
		msg  any
		want string
	}{
		{&messages.CacheLookup{}, "CacheLookup"},
		{messages.CacheLookup{}, "CacheLookup"},
		{&local{}, "local"},
		{"text", "string"},
		{nil, ""},
	} {
		if got := TypeName(tc.msg); got != tc.want {
			t.Errorf("TypeName(%T) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	ok := Spec{Actor: "cache/l1", Kind: Panic}
	for _, tc := range []struct {
		name   string
		change func(*Spec)
		field  string // "" for valid
		reason string
	}{
		{"valid panic", func(*Spec) {}, "", ""},
		{"valid pattern", func(s *Spec) { s.Actor = "worker/*" }, "", ""},
		{"valid everything", func(s *Spec) { s.Actor = "*" }, "", ""},
		{"valid delay", func(s *Spec) { s.Kind, s.Delay = Delay, 60*time.Second }, "", ""},
		{"valid drop with filter", func(s *Spec) { s.Kind, s.Message, s.Count = Drop, "CacheLookup", 3 }, "", ""},
		{"no actor", func(s *Spec) { s.Actor = "" }, "actor", "actor is required"},
		{"unknown actor", func(s *Spec) { s.Actor = "cache/l4" }, "actor", `"cache/l4" matches no running actor`},
		{"pattern matching nothing", func(s *Spec) { s.Actor = "http*" }, "actor", "matches no running actor"},
		{"star inside", func(s *Spec) { s.Actor = "cache/*/x" }, "actor", "only a trailing *"},
		{"unknown kind", func(s *Spec) { s.Kind = "explode" }, "kind", `unknown kind "explode"`},
		{"no kind", func(s *Spec) { s.Kind = "" }, "kind", "unknown kind"},
		{"negative count", func(s *Spec) { s.Count = -1 }, "count", "must be >= 0"},
		{"delay without delay", func(s *Spec) { s.Kind = Delay }, "delay_ms", "delay_ms > 0 and <= 60000; got 0"},
		{"delay too long", func(s *Spec) { s.Kind, s.Delay = Delay, time.Minute+time.Millisecond }, "delay_ms", "<= 60000; got 60001"},
		{"negative delay", func(s *Spec) { s.Kind, s.Delay = Delay, -time.Second }, "delay_ms", "delay_ms > 0"},
		{"delay on a panic", func(s *Spec) { s.Delay = time.Second }, "delay_ms", "only for kind delay"},
		{"message with package", func(s *Spec) { s.Message = "messages.CacheLookup" }, "message", "without package"},
		{"message with pointer", func(s *Spec) { s.Message = "*CacheLookup" }, "message", "without package or pointer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.change(&s)
			err := Validate(s, names)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want *FieldError", err, err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("got %s: %s; want %s: …%s…", fe.Field, fe.Reason, tc.field, tc.reason)
			}
		})
	}
}

// call runs a wrapped receive the way protoactor's middleware chain does
// and reports what happened: "next", "dropped" or the panic.
func call(recv actor.ReceiverFunc, msg any) (what string) {
	defer func() {
		if p := recover(); p != nil {
			what = fmt.Sprint(p)
		}
	}()
	what = "dropped"
	recv(nil, &actor.MessageEnvelope{Message: msg})
	return what
}

// wrapped is an actor's receive that records it was reached.
func wrapped(s *Set, name string) actor.ReceiverFunc {
	return s.Wrap(name, func(actor.ReceiverContext, *actor.MessageEnvelope) { panic("next") })
}

func mustAdd(t *testing.T, s *Set, spec Spec) Fault {
	t.Helper()
	f, err := s.Add(spec, names)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A step table: faults in the set, then messages to actors and what each
// did, then the set's faults.
func TestFaultsActAndCount(t *testing.T) {
	var slept []time.Duration
	s := New(func(d time.Duration) { slept = append(slept, d) })
	f1 := mustAdd(t, s, Spec{Actor: "cache/*", Kind: Drop, Count: 2, Message: "CacheLookup"})
	f2 := mustAdd(t, s, Spec{Actor: "worker/*", Kind: Panic, Count: 1})
	f3 := mustAdd(t, s, Spec{Actor: "cache/l2", Kind: Delay, Delay: 5 * time.Millisecond})
	if f1.ID != "f1" || f2.ID != "f2" || f3.ID != "f3" || !f1.Active || f1.Fired != 0 {
		t.Fatalf("ids and state: %+v %+v %+v", f1, f2, f3)
	}
	for i, step := range []struct {
		actor string
		msg   any
		want  string
	}{
		{"router", &messages.SubmitTask{}, "next"},       // no fault for the router
		{"cache/l2", &messages.CachePut{}, "next"},       // f1 filters; f3 delays it
		{"cache/l2", &messages.CacheLookup{}, "dropped"}, // f1 first: injection order
		{"cache/l3", &messages.CacheLookup{}, "dropped"}, // f1 again: now spent
		{"cache/l3", &messages.CacheLookup{}, "next"},    // nothing for l3 now
		{"cache/l2", &messages.CacheLookup{}, "next"},    // f3 delays it
		{"worker/3", &actor.Started{}, "next"},           // lifecycle passes
		{"worker/3", &actor.Restarting{}, "next"},        // lifecycle passes
		{"worker/3", &actor.Terminated{}, "next"},        // system messages pass
		{"worker/3", &actor.ReceiveTimeout{}, "next"},    // so do receive timeouts
		{"worker/3", &messages.Ping{}, "fault f2: injected panic in worker/3 on Ping"},
		{"worker/3", &messages.Ping{}, "next"}, // f2 spent
	} {
		if got := call(wrapped(s, step.actor), step.msg); got != step.want {
			t.Errorf("step %d: %s ← %T: %s, want %s", i, step.actor, step.msg, got, step.want)
		}
	}
	if want := []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}; fmt.Sprint(slept) != fmt.Sprint(want) {
		t.Errorf("slept %v, want %v", slept, want)
	}
	got := s.List()
	want := []Fault{
		{ID: "f1", Spec: f1.Spec, Fired: 2, Active: false},
		{ID: "f2", Spec: f2.Spec, Fired: 1, Active: false},
		{ID: "f3", Spec: f3.Spec, Fired: 2, Active: true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List:\n got %+v\nwant %+v", got, want)
	}

	if !s.Remove("f3") || s.Remove("f3") || s.Remove("f9") {
		t.Error("Remove: want true once for f3, then false")
	}
	if got := call(wrapped(s, "cache/l2"), &messages.CacheLookup{}); got != "next" {
		t.Errorf("after Remove: %s", got)
	}
	if s.active.Load() != nil {
		t.Error("no fault can fire, yet actors still look at a list")
	}
	if n := s.Clear(); n != 2 || len(s.List()) != 0 {
		t.Errorf("Clear = %d (left %v), want 2 spent faults removed", n, s.List())
	}
	if f := mustAdd(t, s, Spec{Actor: "*", Kind: Drop}); f.ID != "f4" {
		t.Errorf("ids go on after Clear: got %s", f.ID)
	}
}

func TestRefusedSpecChangesNothing(t *testing.T) {
	s := New(nil)
	if _, err := s.Add(Spec{Actor: "nope", Kind: Panic}, names); err == nil {
		t.Fatal("accepted an unknown actor")
	}
	if len(s.List()) != 0 || s.active.Load() != nil {
		t.Errorf("a refused fault was kept: %v", s.List())
	}
	if f := mustAdd(t, s, Spec{Actor: "*", Kind: Drop}); f.ID != "f1" {
		t.Errorf("a refused fault used an id: next is %s", f.ID)
	}
}

// Many actors firing one fault at once: it acts exactly Count times.
func TestCountHoldsUnderConcurrency(t *testing.T) {
	s := New(nil)
	mustAdd(t, s, Spec{Actor: "worker/*", Kind: Drop, Count: 100})
	var reached atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recv := s.Wrap(fmt.Sprint("worker/", w), func(actor.ReceiverContext, *actor.MessageEnvelope) { reached.Add(1) })
			for range 100 {
				recv(nil, &actor.MessageEnvelope{Message: &messages.Ping{}})
			}
		}()
	}
	wg.Wait()
	if f := s.List()[0]; f.Fired != 100 || f.Active {
		t.Errorf("fault = %+v, want fired 100 and spent", f)
	}
	if n := reached.Load(); n != 700 {
		t.Errorf("messages that reached the actors = %d, want 700 of 800", n)
	}
}

func TestSpentFaultsAreBounded(t *testing.T) {
	s := New(nil)
	recv := wrapped(s, "metrics")
	for range maxSpent + 10 {
		mustAdd(t, s, Spec{Actor: "metrics", Kind: Drop, Count: 1})
		call(recv, &messages.Ping{})
	}
	live := mustAdd(t, s, Spec{Actor: "metrics", Kind: Drop})
	list := s.List()
	if len(list) != maxSpent+1 || list[len(list)-1].ID != live.ID || list[0].ID != "f11" {
		t.Errorf("kept %d faults from %s to %s, want the newest %d spent and the live one", len(list), list[0].ID, list[len(list)-1].ID, maxSpent)
	}
}

// With no fault active the check is one atomic load (and a spent fault
// leaves nothing behind).
func BenchmarkWrap(b *testing.B) {
	next := func(actor.ReceiverContext, *actor.MessageEnvelope) {}
	env := &actor.MessageEnvelope{Message: &messages.CacheLookup{}}
	for _, bc := range []struct {
		name  string
		setup func(*Set)
	}{
		{"bare", nil},
		{"no faults", func(*Set) {}},
		{"fault on another actor", func(s *Set) { s.Add(Spec{Actor: "worker/*", Kind: Drop}, names) }},
		{"fault filtering another message", func(s *Set) { s.Add(Spec{Actor: "cache/l2", Kind: Drop, Message: "CachePut"}, names) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			recv := next
			if bc.setup != nil {
				s := New(nil)
				bc.setup(s)
				recv = s.Wrap("cache/l2", next)
			}
			b.ReportAllocs()
			for b.Loop() {
				recv(nil, env)
			}
		})
	}
}
