package router

import (
	"time"
)

// item is one queued task.
type item struct {
	id       string
	level    int       // priority level it was queued at, 0 most urgent
	seq      uint64    // arrival order, ties break FIFO
	enqueued time.Time // when it entered the queue
}

// queue holds tasks by strict priority level, FIFO within a level, with
// aging: every `aging` a task waits counts as one level more urgent, so a
// low-priority task waits at most about levels × aging behind a stream of
// urgent ones. No goroutines, no clock: time is an argument.
type queue struct {
	levels [][]*item
	size   int
	seq    uint64
	aging  time.Duration
}

func newQueue(levels int, aging time.Duration) *queue {
	return &queue{levels: make([][]*item, max(levels, 1)), aging: aging}
}

func (q *queue) len() int { return q.size }

// push appends it at the back of its level (clamped to the levels there are).
func (q *queue) push(it *item) {
	q.seq++
	it.seq = q.seq
	it.level = min(max(it.level, 0), len(q.levels)-1)
	q.levels[it.level] = append(q.levels[it.level], it)
	q.size++
}

// pushFront puts a task back at the head of its level: a task whose worker
// died goes before the ones that arrived after it.
func (q *queue) pushFront(it *item) {
	it.level = min(max(it.level, 0), len(q.levels)-1)
	q.levels[it.level] = append([]*item{it}, q.levels[it.level]...)
	q.size++
}

// effective is a task's level after aging.
func (q *queue) effective(it *item, now time.Time) int64 {
	lvl := int64(it.level)
	if q.aging > 0 {
		lvl -= int64(now.Sub(it.enqueued) / q.aging)
	}
	return lvl
}

// pop removes the most urgent task. Within a level the head has waited
// longest, so it is the level's best candidate; across levels the lowest
// effective level wins, the earlier arrival on a tie.
func (q *queue) pop(now time.Time) *item {
	best := -1
	var bestLvl int64
	var bestSeq uint64
	for l, lvl := range q.levels {
		if len(lvl) == 0 {
			continue
		}
		head := lvl[0]
		e := q.effective(head, now)
		if best < 0 || e < bestLvl || (e == bestLvl && head.seq < bestSeq) {
			best, bestLvl, bestSeq = l, e, head.seq
		}
	}
	if best < 0 {
		return nil
	}
	lvl := q.levels[best]
	it := lvl[0]
	lvl[0] = nil
	if len(lvl) == 1 {
		// Empty: the next push reuses the array from here instead of
		// allocating (a queue that is pushed and popped one at a time
		// would otherwise run off the end of its array every few tasks).
		q.levels[best] = lvl[:0]
	} else {
		q.levels[best] = lvl[1:]
	}
	q.size--
	return it
}

// remove takes the task id out of the queue, reporting whether it was there.
func (q *queue) remove(id string) bool {
	for l, lvl := range q.levels {
		for i, it := range lvl {
			if it.id == id {
				q.levels[l] = append(lvl[:i:i], lvl[i+1:]...)
				q.size--
				return true
			}
		}
	}
	return false
}

// resize changes the number of levels: tasks on levels that no longer exist
// move to the new lowest level, behind the tasks already there, in their
// order.
func (q *queue) resize(levels int) {
	levels = max(levels, 1)
	if levels == len(q.levels) {
		return
	}
	next := make([][]*item, levels)
	copy(next, q.levels)
	for l := levels; l < len(q.levels); l++ {
		for _, it := range q.levels[l] {
			it.level = levels - 1
			next[levels-1] = append(next[levels-1], it)
		}
	}
	q.levels = next
}

// drain removes and returns every queued task.
func (q *queue) drain() []*item {
	var out []*item
	for l := range q.levels {
		out = append(out, q.levels[l]...)
		q.levels[l] = nil
	}
	q.size = 0
	return out
}
