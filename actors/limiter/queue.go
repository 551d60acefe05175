package limiter

import (
	"container/heap"

	"github.com/asynkron/protoactor-go/actor"
)

// waiter is a caller waiting for tokens.
type waiter struct {
	id       uint64
	priority int
	count    int
	seq      uint64 // arrival order
	replyTo  *actor.PID
	index    int
}

// waitQueue orders waiters by priority (0 first), then arrival.
type waitQueue []*waiter

var _ heap.Interface = (*waitQueue)(nil)

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	if q[i].priority != q[j].priority {
		return q[i].priority < q[j].priority
	}
	return q[i].seq < q[j].seq
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return w
}

func (q *waitQueue) remove(id uint64) bool {
	for _, w := range *q {
		if w.id == id {
			heap.Remove(q, w.index)
			return true
		}
	}
	return false
}
