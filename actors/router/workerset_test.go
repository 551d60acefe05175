package router

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// The idle queue gives out the slot free longest, skips entries gone stale
// (a slot taken by lowestIdle, a retired one), and stays small while it
// never drains.
func TestIdleQueue(t *testing.T) {
	var w workerSet
	for _, s := range w.grow(4) {
		w.setPID(s, actor.NewPID("local", s.name))
	}
	next := func() string {
		s := w.longestIdle()
		if s == nil {
			return "none"
		}
		w.take(s, "t")
		return s.name
	}
	if got := next(); got != "worker/1" {
		t.Fatalf("first free = %s, want worker/1", got)
	}
	w.free(w.slots[0]) // worker/1 is now free the shortest time
	if got := next(); got != "worker/2" {
		t.Fatalf("free longest = %s, want worker/2", got)
	}
	w.take(w.lowestIdle(), "t") // worker/1, still queued: its entry goes stale
	w.shrink(3)                 // worker/4 retired, still queued
	if got := next(); got != "worker/3" {
		t.Fatalf("after a stale entry = %s, want worker/3", got)
	}
	if got := next(); got != "none" {
		t.Fatalf("with every slot busy or retired = %s, want none", got)
	}
	// Three slots take turns for a long time while one stays free: the
	// queue never drains, and must not grow with the turns.
	w.free(w.slots[0])
	w.free(w.slots[1])
	for range 10000 {
		s := w.longestIdle()
		w.take(s, "t")
		w.free(s)
	}
	if len(w.idle) > 64 {
		t.Errorf("idle queue array holds %d entries for 2 free slots", len(w.idle))
	}
}
