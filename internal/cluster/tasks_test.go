package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/redistest"
	"github.com/deer-runtime/deer/messages"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestTaskRecordKeepsTheWholeResult(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	res := &messages.TaskResult{ID: "a", Status: messages.TaskFailed, UpstreamStatus: 503,
		Header: map[string][]string{"Retry-After": {"2"}}, Body: []byte{0xff, 'x'}, Cache: messages.CacheMiss,
		Attempts: 3, Queue: time.Millisecond, Latency: 2 * time.Second, Upstream: time.Second,
		Err: &messages.TaskError{Code: messages.CodeUpstream, Message: "503"}}
	rec := cluster.TaskRecord{ID: "a", State: messages.TaskFailed, Node: "n1", Owner: "t1", Updated: t0, Result: cluster.RecordOf(res)}
	w, err := cluster.NewTaskWrite(rec, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.WriteTasks(ctx, c, []cluster.TaskWrite{w}); err != nil {
		t.Fatal(err)
	}
	got, found, err := cluster.GetTask(ctx, c, "a")
	if err != nil || !found || got.Node != "n1" || got.Owner != "t1" || !got.Updated.Equal(t0) {
		t.Fatalf("record %+v found=%v err=%v", got, found, err)
	}
	back := got.Result.Result("a")
	if back.Status != res.Status || back.UpstreamStatus != 503 || string(back.Body) != string(res.Body) ||
		back.Header["Retry-After"][0] != "2" || back.Attempts != 3 || back.Queue != res.Queue ||
		back.Latency != res.Latency || back.Upstream != res.Upstream || *back.Err != *res.Err {
		t.Fatalf("result back %+v, want %+v", back, res)
	}
	if ttl := c.PTTL(ctx, cluster.TaskKey("a")).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("record TTL %v", ttl)
	}
	// The accepted state never overwrites a later one.
	if err := cluster.PutTaskIfAbsent(ctx, c, cluster.TaskRecord{ID: "a", State: messages.TaskQueued}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cluster.GetTask(ctx, c, "a"); got.State != messages.TaskFailed {
		t.Fatalf("state after a late accept: %s", got.State)
	}
	if _, found, err := cluster.GetTask(ctx, c, "none"); found || err != nil {
		t.Fatalf("unknown id: found=%v err=%v", found, err)
	}
}

// A claim is the first task's while it runs; its success keeps it for the
// result TTL, its failure frees the key; a task that does not hold the
// claim settles nothing.
func TestIdempotencyClaimIsKeptOnSuccessAndFreedOnFailure(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	a := cluster.Claim{Node: "n1", ID: "a"}
	b := cluster.Claim{Node: "n2", ID: "b"}
	finish := func(claim cluster.Claim, scoped string, keep bool) {
		t.Helper()
		w, err := cluster.NewTaskWrite(cluster.TaskRecord{ID: claim.ID, State: "x", Node: claim.Node}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		w.Scoped, w.Claim, w.Keep = scoped, claim, keep
		if err := cluster.WriteTasks(ctx, c, []cluster.TaskWrite{w}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(c2 cluster.Claim, scoped string) (cluster.Claim, bool) {
		t.Helper()
		held, ok, err := cluster.ClaimIdempotency(ctx, c, scoped, c2, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return held, ok
	}

	if held, ok := claim(a, "k1"); !ok || held != a {
		t.Fatalf("first claim: %+v %v", held, ok)
	}
	if held, ok := claim(b, "k1"); ok || held != a {
		t.Fatalf("second claim: %+v %v, want held by a", held, ok)
	}
	finish(b, "k1", false) // not b's claim: a's stays
	if held, ok := claim(b, "k1"); ok || held != a {
		t.Fatalf("after another task's failure: %+v %v", held, ok)
	}
	finish(a, "k1", true)
	if ttl := c.PTTL(ctx, cluster.IdemKey("k1")).Val(); ttl <= time.Minute {
		t.Fatalf("a succeeded: claim TTL %v, want the result TTL", ttl)
	}

	claim(a, "k2")
	finish(a, "k2", false)
	if held, ok := claim(b, "k2"); !ok || held != b {
		t.Fatalf("after the first task failed: %+v %v, want b's claim", held, ok)
	}
}
