package router

import (
	"io"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/cache"
	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/messages"
)

// Effect is something the book asks the router to do. The book decides; the
// router (router.go) performs: it sends the messages, arms the timers and
// writes the logs and metrics. Effects are plain values so scenario tests
// print them.
type Effect interface{ effect() }

// Answer delivers a task's result to one caller. Task is set on the one
// Answer that carries the task's terminal result (for its log line and
// metrics, once, whatever number of callers it goes to); an async task's has
// no To: its result is kept for GET /v1/tasks.
type Answer struct {
	To     *actor.PID
	Result *messages.TaskResult
	Task   *messages.Task
}

// Accepted tells an async caller its task was queued.
type Accepted struct {
	To *actor.PID
	ID string
}

// Run hands a task to a worker. It holds one pointer so that it goes into
// an Effect without an allocation of its own (one per task adds up).
type Run struct{ *Dispatch }

// Dispatch is a worker and the message it is sent.
type Dispatch struct {
	Worker  *slot
	Message worker.Run
}

// CancelRun stops a worker's call of task ID.
type CancelRun struct {
	Worker *slot
	ID     string
}

// ReplaceWorker swaps a wedged worker for a new one under the same name.
type ReplaceWorker struct {
	Worker *slot
	Why    string
}

// Requeued says a task went back to the queue after losing its worker.
type Requeued struct {
	ID      string
	Crashes int
	Why     string
}

// ArmWatchdog makes the router's one watchdog timer fire at At.
type ArmWatchdog struct{ At time.Time }

// LookupCache asks cache/l2 (then l3) for Key; the answer comes back as
// *messages.CacheLookedUp with Ref.
type LookupCache struct {
	Ref uint64
	Key string
}

// StoreCache writes an answer to the cache (L1 and L3), fire-and-forget.
// Replace (a refresh) also drops an older copy L2 may hold.
type StoreCache struct {
	Key     string
	Answer  cache.Answer
	TTL     time.Duration
	Replace bool
}

// EnqueueBatch hands an embedding call to batch/Upstream; the batcher
// answers *messages.BatchRejected or, later, *messages.BatchReady with Ref
// among its items.
type EnqueueBatch struct {
	Upstream string
	Ref      uint64
	Model    string
	Options  string
	Inputs   int
	Priority int
	Payload  []byte
}

// CloseStream closes a streamed answer nobody will read (its task was
// answered already): the worker and the connection are freed.
type CloseStream struct{ Stream io.ReadCloser }

// Drained answers the drain requests once no task is left.
type Drained struct {
	To        []*actor.PID
	Finished  int
	Abandoned int
}

func (Answer) effect()        {}
func (Accepted) effect()      {}
func (Run) effect()           {}
func (CancelRun) effect()     {}
func (ReplaceWorker) effect() {}
func (Requeued) effect()      {}
func (ArmWatchdog) effect()   {}
func (LookupCache) effect()   {}
func (StoreCache) effect()    {}
func (EnqueueBatch) effect()  {}
func (CloseStream) effect()   {}
func (Drained) effect()       {}
