package messages

import (
	"io"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Task is one logical upstream call (SPEC §5). Fields are plain so the
// struct can become a protobuf message when tasks cross machines.
type Task struct {
	ID       string // unique; the router assigns one when empty
	Upstream string // a configured upstream's name
	Method   string // HTTP method; default POST
	Path     string // path (with query) appended to the upstream's base URL
	// Header holds the caller's extra request headers (already checked for
	// injection by the ingress). Authorization is set by deer from the
	// upstream's api_key_env and never taken from here.
	Header map[string][]string
	Body   []byte
	// Priority is the queue level, 0 most urgent, < priority_levels.
	Priority int
	Cache    string        // CacheAuto (default, ""), CacheBypass, CacheRefresh or CacheNoStore
	Timeout  time.Duration // 0: parallel_execution.worker_timeout
	// CacheTTL overrides cache.default_ttl for this task's stored answer
	// (X-Deer-Cache-TTL); 0 keeps the default.
	CacheTTL time.Duration
	// CacheNamespace separates the cache entries of callers that share a
	// credential (X-Deer-Cache-Namespace); part of the cache key.
	CacheNamespace string
	// Tenant identifies the caller for cache isolation: a hash of its
	// credential (the ingress hashes the client's Authorization header),
	// never the credential itself. Part of the cache key unless
	// cache.share_across_keys is true. Empty: no credential.
	Tenant string
	// Stream asks for the upstream body as it arrives (TaskResult.Stream)
	// instead of buffered in TaskResult.Body.
	Stream bool
	// IdempotencyKey, when set, makes repeats within 10 minutes return the
	// first result instead of calling the upstream again.
	IdempotencyKey string
	// Submitted is when the task was accepted (set by the router).
	Submitted time.Time
}

// SubmitTask asks the router to run a task. The router answers
// *TaskResult, exactly once, to ReplyTo when set, else to the sender.
// A task refused at admission (queue full, unknown upstream, shutting down)
// is answered at once with a failed result.
//
// With Async the router answers *TaskAccepted at once instead (or the failed
// result, when refused) and keeps the result for TaskStatusQuery for 10 minutes.
type SubmitTask struct {
	Task    *Task
	ReplyTo *actor.PID
	Async   bool
}

// TaskAccepted answers an async SubmitTask that was queued.
type TaskAccepted struct {
	ID string
}

// TaskStatusQuery asks the router about a task. Reply: *TaskStatusReport.
// Tenant must be the Task.Tenant the task was submitted with: a task is
// only found by its owner (an id alone is not enough to read it).
type TaskStatusQuery struct {
	ID     string
	Tenant string
}

// Task states in a TaskStatusReport.
const (
	TaskQueued  = "queued"
	TaskRunning = "running"
)

// TaskStatusReport says where a task is: queued, running, or finished with
// its result (Status TaskSucceeded/TaskFailed). Found is false for an unknown
// id, another tenant's task, or a result older than 10 minutes.
type TaskStatusReport struct {
	ID     string
	Found  bool
	State  string // TaskQueued, TaskRunning, TaskSucceeded, TaskFailed
	Result *TaskResult
}

// CancelTask withdraws a queued or running task; its caller gets a
// TaskResult with code "cancelled" (a running task's once its worker has
// stopped, with the attempts it made). Tenant must be the Task.Tenant the
// task was submitted with, as for TaskStatusQuery. ClientGone says the
// caller itself stopped waiting (the result is then logged and counted as
// "client_closed"). Reply (when there is a sender): *TaskCancelled.
type CancelTask struct {
	ID         string
	Tenant     string
	ClientGone bool
}

// TaskCancelled answers CancelTask. Found is false when the task is unknown
// (or another tenant's) or already finished (State then says how it ended).
// On a cluster node, Node names the node running the task when that is
// another one; Unreachable says that node did not get the cancel (it is
// gone or cut off from Redis), Found being false then.
type TaskCancelled struct {
	ID          string
	Found       bool
	State       string
	Node        string
	Unreachable bool
}

// DrainTasks tells the router to stop accepting tasks and to answer
// *TasksDrained once none is queued or running. Tasks still there when
// Deadline passes are answered with shutting_down.
type DrainTasks struct {
	Deadline time.Time
}

// TasksDrained answers DrainTasks.
type TasksDrained struct {
	Finished  int // tasks that completed during the drain
	Abandoned int // tasks answered with shutting_down at the deadline
}

// Task.Cache values: how a task uses the cache (SPEC §5, X-Deer-Cache).
const (
	CacheAuto    = "auto"     // answer from the cache when the task is cacheable, store a 2xx answer
	CacheBypass  = "bypass"   // neither read nor write the cache, never coalesced
	CacheRefresh = "refresh"  // call the upstream and replace the stored answer
	CacheNoStore = "no-store" // may be answered from the cache; its own answer is not stored
)

// TaskResult.Cache values: where the answer came from.
const (
	CacheMiss      = "miss"      // the upstream answered (or the task is not cacheable)
	CacheHitL1     = "hit-l1"    // from cache/l1
	CacheHitL2     = "hit-l2"    // from cache/l2
	CacheHitL3     = "hit-l3"    // from cache/l3
	CacheCoalesced = "coalesced" // shared the answer of an identical task in flight
	// CacheBypass, CacheRefresh: as the task asked.
)

// Task outcome statuses.
const (
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
)

// Task error codes (TaskError.Code). The ingress maps them to HTTP statuses.
const (
	CodeQueueFull     = "queue_full"       // 429 with Retry-After
	CodeShuttingDown  = "shutting_down"    // 503
	CodeUnknownTarget = "unknown_upstream" // 404
	CodeBadRequest    = "bad_request"      // 400
	CodeTimeout       = "timeout"          // 504
	CodeUpstream      = "upstream_error"   // 502: the upstream could not be reached or answered 5xx
	CodeCancelled     = "cancelled"        // 499 on the API
	CodeClientClosed  = "client_closed"    // 499: the caller went away (hung up, or stopped reading a stream)
	CodeInternal      = "internal_error"   // 500: the task crashed its actor repeatedly
	CodeCircuitOpen   = "circuit_open"     // 503
	// CodeKeyMissing: the upstream's api_key_env names a variable that was
	// unset when deer started; the task was refused without a call. 503.
	CodeKeyMissing = "upstream_key_missing"
)

// TaskError says why a task failed.
type TaskError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *TaskError) Error() string { return e.Code + ": " + e.Message }

// TaskResult is a task's one terminal answer.
type TaskResult struct {
	ID             string
	Status         string // TaskSucceeded or TaskFailed
	UpstreamStatus int    // the upstream's HTTP status, 0 when none was received
	Header         map[string][]string
	Body           []byte
	// Stream, for a task with Stream set that reached the upstream, is the
	// upstream body as it arrives. The receiver must read and Close it: the
	// close releases the connection lease and frees the worker.
	Stream   io.ReadCloser
	Cache    string        // CacheMiss, CacheBypass, CacheRefresh, CacheHitL1…L3 or CacheCoalesced
	Attempts int           // attempts that reached the upstream (0: refused, failed fast or cancelled before any)
	Queue    time.Duration // time spent queued
	Latency  time.Duration // time from acceptance to the answer (headers, for streams)
	Upstream time.Duration // time spent waiting on the upstream
	Err      *TaskError
}
