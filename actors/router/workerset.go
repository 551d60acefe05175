package router

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// slot is one worker position, worker/N. Its PID changes when the worker is
// replaced; its SPEC name does not.
type slot struct {
	index   int
	name    string // SPEC name: worker/N
	pid     *actor.PID
	gen     int    // incarnation: replacements get a fresh PID name
	pinging bool   // a health-check ping is outstanding
	busy    bool   // running a task
	task    string // id of that task
	queued  bool   // in the set's idle queue
}

// pidName is the actor name under the router: worker/N for the first
// incarnation, worker/N~G for replacements (the old process may still be
// stuck holding the old name).
func (s *slot) pidName() string {
	if s.gen == 0 {
		return s.name
	}
	return fmt.Sprintf("%s~%d", s.name, s.gen)
}

// workerSet is the router's ordered list of worker slots. Pure bookkeeping:
// the router performs the spawns and stops it asks for.
type workerSet struct {
	slots []*slot
	// byID finds a slot by its current PID's id: every finished task is
	// matched to its worker, and a scan of max_workers slots per task was a
	// visible cost of the router at a thousand workers.
	byID map[string]*slot
	// idle holds every free slot in the order it became free, so that the
	// one free longest is found without a scan of max_workers slots per
	// dispatch. An entry may be stale (its slot busy again, or no longer in
	// the set): it is dropped when reached; a slot is queued at most once.
	idle     []*slot
	idleHead int
}

// setPID makes pid the slot's current process, free for a task; its
// previous one is no longer found by byPID.
func (w *workerSet) setPID(s *slot, pid *actor.PID) {
	if w.byID == nil {
		w.byID = map[string]*slot{}
	}
	if s.pid != nil {
		delete(w.byID, s.pid.Id)
	}
	s.pid = pid
	w.byID[pid.Id] = s
	w.free(s)
}

// take gives s the task id.
func (w *workerSet) take(s *slot, id string) {
	s.busy, s.task = true, id
}

// free makes s free for the next task, queued behind the slots free
// longer.
func (w *workerSet) free(s *slot) {
	s.busy, s.task = false, ""
	if s.queued || !w.holds(s) {
		return
	}
	s.queued = true
	if w.idleHead > 32 && 2*w.idleHead >= len(w.idle) {
		// Most of the array is taken entries: move the rest to its front,
		// so that it stays within twice the slots queued.
		n := copy(w.idle, w.idle[w.idleHead:])
		clear(w.idle[n:])
		w.idle, w.idleHead = w.idle[:n], 0
	}
	w.idle = append(w.idle, s)
}

// longestIdle takes the slot free longest out of the idle queue, or nil
// when none is free.
func (w *workerSet) longestIdle() *slot {
	for w.idleHead < len(w.idle) {
		s := w.idle[w.idleHead]
		w.idle[w.idleHead] = nil
		w.idleHead++
		s.queued = false
		if !s.busy && w.holds(s) {
			return s
		}
	}
	w.idle, w.idleHead = w.idle[:0], 0 // drained: reuse the array
	return nil
}

// holds says s is in the set with a process: shrink takes a slot's PID out
// of byID, spawn puts the new one in.
func (w *workerSet) holds(s *slot) bool {
	return s.pid != nil && w.byID[s.pid.Id] == s
}

// lowestIdle is the lowest-numbered free slot, or nil. It leaves the idle
// queue as it is: an entry for a slot taken here is dropped when reached.
func (w *workerSet) lowestIdle() *slot {
	for _, s := range w.slots {
		if !s.busy && s.pid != nil {
			return s
		}
	}
	return nil
}

// grow returns the new slots needed to reach n workers.
func (w *workerSet) grow(n int) []*slot {
	var added []*slot
	for len(w.slots) < n {
		i := len(w.slots) + 1
		s := &slot{index: i, name: fmt.Sprintf("worker/%d", i)}
		w.slots = append(w.slots, s)
		added = append(added, s)
	}
	return added
}

// shrink removes and returns the slots beyond n, highest index first. Idle
// workers are the only ones here yet; when tasks run, busy workers finish
// their task before they stop (they are retired by message, not killed).
func (w *workerSet) shrink(n int) []*slot {
	if n >= len(w.slots) {
		return nil
	}
	removed := make([]*slot, 0, len(w.slots)-n)
	for i := len(w.slots) - 1; i >= n; i-- {
		s := w.slots[i]
		if s.pid != nil {
			delete(w.byID, s.pid.Id)
		}
		removed = append(removed, s)
	}
	w.slots = w.slots[:n]
	return removed
}

// byPID finds the slot whose current PID is pid.
func (w *workerSet) byPID(pid *actor.PID) *slot {
	if pid == nil {
		return nil
	}
	return w.byID[pid.Id]
}

func (w *workerSet) busy() int {
	n := 0
	for _, s := range w.slots {
		if s.busy {
			n++
		}
	}
	return n
}
