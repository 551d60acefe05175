package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deer-runtime/deer/messages"
)

// Tasks shared between nodes (docs/api.md, "Tasks in a cluster"). Two kinds
// of keys, both expiring:
//
//	deer:task:ID    JSON TaskRecord: where the task is and, once finished, its
//	                result; written by the node that runs it (PX the router's
//	                result TTL), read by any node for GET /v1/tasks/ID.
//	deer:idem:HASH  "NODE\nID": the first task of an Idempotency-Key (HASH is
//	                the SHA-256 of the router's scoped key: upstream, tenant,
//	                key), claimed with SET NX before the task is submitted.
//	                While the task runs it lives as long as the task may run;
//	                a success keeps it for the result TTL, a failure drops it
//	                (locally too a failed first result is not replayed).
//
// The functions here make one round trip each and hold no state: the
// runtime decides when to call them and what to do when Redis is gone.

// TaskKey is the key of task id's record.
func TaskKey(id string) string { return Key("task", id) }

// IdemKey is the key of an Idempotency-Key's claim; scoped is the router's
// scoped key (it holds a tenant hash and a client's key: hashed, so the key
// is bounded and says nothing).
func IdemKey(scoped string) string {
	sum := sha256.Sum256([]byte(scoped))
	return Key("idem", hex.EncodeToString(sum[:]))
}

// TaskRecord is a task as other nodes see it.
type TaskRecord struct {
	ID      string        `json:"id"`
	State   string        `json:"state"` // queued, running, succeeded or failed
	Node    string        `json:"node"`  // the node that runs or ran it
	Owner   string        `json:"owner"` // its Task.Tenant: only its owner may read it
	Updated time.Time     `json:"updated"`
	Result  *ResultRecord `json:"result,omitempty"` // once finished
}

// Finished reports whether the record holds the task's result.
func (r *TaskRecord) Finished() bool { return r.Result != nil }

// ResultRecord is a messages.TaskResult without its stream (streams are
// never kept: not locally either).
type ResultRecord struct {
	Status         string              `json:"status"`
	UpstreamStatus int                 `json:"upstream_status"`
	Header         map[string][]string `json:"header,omitempty"`
	Body           []byte              `json:"body,omitempty"`
	Cache          string              `json:"cache"`
	Attempts       int                 `json:"attempts"`
	QueueNS        int64               `json:"queue_ns"`
	LatencyNS      int64               `json:"latency_ns"`
	UpstreamNS     int64               `json:"upstream_ns"`
	Err            *messages.TaskError `json:"error,omitempty"`
}

// RecordOf is res as a record.
func RecordOf(res *messages.TaskResult) *ResultRecord {
	return &ResultRecord{
		Status: res.Status, UpstreamStatus: res.UpstreamStatus, Header: res.Header, Body: res.Body,
		Cache: res.Cache, Attempts: res.Attempts, QueueNS: int64(res.Queue), LatencyNS: int64(res.Latency),
		UpstreamNS: int64(res.Upstream), Err: res.Err,
	}
}

// Result is the record as task id's result, a struct of the caller's own.
func (r *ResultRecord) Result(id string) *messages.TaskResult {
	return &messages.TaskResult{
		ID: id, Status: r.Status, UpstreamStatus: r.UpstreamStatus, Header: r.Header, Body: r.Body,
		Cache: r.Cache, Attempts: r.Attempts, Queue: time.Duration(r.QueueNS),
		Latency: time.Duration(r.LatencyNS), Upstream: time.Duration(r.UpstreamNS), Err: r.Err,
	}
}

// Claim is the holder of an Idempotency-Key: the first task and its node.
type Claim struct {
	Node string
	ID   string
}

func (c Claim) String() string { return c.Node + "\n" + c.ID }

func parseClaim(v string) (Claim, error) {
	node, id, ok := strings.Cut(v, "\n")
	if !ok || id == "" {
		return Claim{}, fmt.Errorf("cluster: malformed idempotency claim %q", v)
	}
	return Claim{Node: node, ID: id}, nil
}

// ClaimIdempotency claims the key scoped for c, for hold, unless another
// task holds it: then it returns that task's claim and false. One round
// trip (SET NX GET, Redis 7).
func ClaimIdempotency(ctx context.Context, rc redis.Cmdable, scoped string, c Claim, hold time.Duration) (Claim, bool, error) {
	prev, err := rc.SetArgs(ctx, IdemKey(scoped), c.String(), redis.SetArgs{Mode: "NX", Get: true, TTL: hold}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return c, true, nil
	case err != nil:
		return Claim{}, false, err
	}
	held, err := parseClaim(prev)
	return held, false, err
}

// GetTask reads task id's record; false when there is none.
func GetTask(ctx context.Context, rc redis.Cmdable, id string) (TaskRecord, bool, error) {
	raw, err := rc.Get(ctx, TaskKey(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return TaskRecord{}, false, nil
	case err != nil:
		return TaskRecord{}, false, err
	}
	var rec TaskRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return TaskRecord{}, false, fmt.Errorf("cluster: task record %s: %w", id, err)
	}
	return rec, true, nil
}

// PutTaskIfAbsent writes rec unless the task has a record already: the
// accepted state never overwrites a later one written meanwhile.
func PutTaskIfAbsent(ctx context.Context, rc redis.Cmdable, rec TaskRecord, ttl time.Duration) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	err = rc.SetArgs(ctx, TaskKey(rec.ID), raw, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return nil // a record was there: not a failure
	}
	return err
}

// TaskWrite is one record write, with, for a finished idempotent task, what
// becomes of its claim: kept for TTL on success, dropped on failure; either
// only while the claim is still this task's.
type TaskWrite struct {
	ID     string
	Record []byte // the JSON TaskRecord
	TTL    time.Duration
	Scoped string // the router's scoped idempotency key; "" for none
	Claim  Claim
	Keep   bool
}

// NewTaskWrite encodes rec.
func NewTaskWrite(rec TaskRecord, ttl time.Duration) (TaskWrite, error) {
	raw, err := json.Marshal(rec)
	return TaskWrite{ID: rec.ID, Record: raw, TTL: ttl}, err
}

// finishScript writes a finished idempotent task's record and settles its
// claim, atomically. KEYS[1] record, KEYS[2] claim; ARGV record, ttl_ms,
// claim value, keep (1) or drop (0).
var finishScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then
  if ARGV[4] == '1' then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  else
    redis.call('DEL', KEYS[2])
  end
end
return 1
`)

// WriteTasks performs ws in order in one pipeline: one round trip for a
// batch. It returns the first error.
func WriteTasks(ctx context.Context, rc redis.Cmdable, ws []TaskWrite) error {
	cmds, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, w := range ws {
			ttl := max(w.TTL.Milliseconds(), 1)
			if w.Scoped == "" {
				p.Set(ctx, TaskKey(w.ID), w.Record, w.TTL)
				continue
			}
			keep := "0"
			if w.Keep {
				keep = "1"
			}
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
			finishScript.Eval(ctx, p, []string{TaskKey(w.ID), IdemKey(w.Scoped)}, w.Record, ttl, w.Claim.String(), keep)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// PublishCancel asks node to cancel task id of tenant (DELETE /v1/tasks on
// another node than the one running it). It returns how many subscribers
// got the request: 0 when node is not listening (gone, or cut off).
func PublishCancel(ctx context.Context, rc redis.Cmdable, node, id, tenant string) (int64, error) {
	return rc.Publish(ctx, CancelChannel(node), id+"\n"+tenant).Result()
}

// CancelChannel is the channel node listens on for cancel requests.
func CancelChannel(node string) string { return Key("cancel", node) }

// ParseCancel splits a cancel request into task id and tenant.
func ParseCancel(payload string) (id, tenant string, ok bool) {
	id, tenant, ok = strings.Cut(payload, "\n")
	return id, tenant, ok && id != ""
}
