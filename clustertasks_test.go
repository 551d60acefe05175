package deer_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/actors/router"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/redistest"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

// Tasks across the nodes of a cluster (issue 13): two real runtimes share a
// real redis-server, and call deersim (or a held upstream) over loopback.

// clusterPair starts two nodes on the upstream at url sharing srv.
func clusterPair(t *testing.T, srv *redistest.Server, url string) (a, b *deer.Runtime) {
	t.Helper()
	node := func() *deer.Runtime {
		cfg := testConfig(t)
		cfg.ConnectionPool.InitialConnections = 0
		cfg.Monitoring.DetailedLogging = false
		unlimited(cfg)
		cfg.Upstreams = map[string]conf.Upstream{"sim": conf.NewUpstream(url)}
		cfg.Cluster.RedisURL = srv.URL()
		return start(t, cfg)
	}
	return node(), node()
}

// chatCall is a chat call that only an Idempotency-Key can deduplicate: no
// cache, no coalescing.
func chatCall(tenant, idem string) *messages.Task {
	task := chatTask("", "hello from "+tenant)
	task.Cache, task.Tenant, task.IdempotencyKey = messages.CacheBypass, tenant, idem
	return task
}

// metricValue is the value of the unlabelled series name, or -1.
func metricValue(rt *deer.Runtime, name string) float64 {
	for _, line := range strings.Split(prometheusText(rt), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func TestClusterAsyncTaskIsAnsweredByAnyNode(t *testing.T) {
	srv := redistest.Start(t)
	s, url := simServer(t, sim.DefaultKnobs())
	a, b := clusterPair(t, srv, url)
	ctx := context.Background()

	id, res, err := a.SubmitAsync(ctx, chatCall("t1", ""))
	if err != nil || res != nil {
		t.Fatalf("SubmitAsync: %v %+v", err, res)
	}
	// Recorded before the 202: the other node knows it at once.
	if rep, err := b.TaskStatus(ctx, id, "t1"); err != nil || !rep.Found {
		t.Fatalf("B right after the accept: %+v %v", rep, err)
	}
	var onB *messages.TaskStatusReport
	actortest.Eventually(t, "B reports the result", func() bool {
		onB, err = b.TaskStatus(ctx, id, "t1")
		return err == nil && onB.State == messages.TaskSucceeded
	})
	onA, err := a.TaskStatus(ctx, id, "t1")
	if err != nil || onA.Result == nil {
		t.Fatalf("A: %+v %v", onA, err)
	}
	if r := onB.Result; r == nil || r.ID != id || string(r.Body) != string(onA.Result.Body) || r.UpstreamStatus != 200 ||
		r.Attempts != 1 || r.Cache != onA.Result.Cache || r.Latency != onA.Result.Latency {
		t.Fatalf("B's result %+v, A's %+v", onB.Result, onA.Result)
	}
	// Another tenant gets what an unknown id gets, on either node.
	for _, rt := range []*deer.Runtime{a, b} {
		if rep, err := rt.TaskStatus(ctx, id, "t2"); err != nil || rep.Found || rep.Result != nil {
			t.Fatalf("another tenant: %+v %v", rep, err)
		}
		if rep, err := rt.CancelTask(ctx, id, "t2"); err != nil || rep.Found || rep.State != "" {
			t.Fatalf("another tenant's cancel: %+v %v", rep, err)
		}
	}
	// Finished: B says so, as A would.
	if rep, err := b.CancelTask(ctx, id, "t1"); err != nil || rep.Found || rep.State != messages.TaskSucceeded {
		t.Fatalf("cancel of a finished task on B: %+v %v", rep, err)
	}
	if n := chatCalls(s); n != 1 {
		t.Fatalf("%d upstream calls", n)
	}
	for _, rt := range []*deer.Runtime{a, b} {
		for _, m := range []string{"deer_cluster_task_writes_failed_total", "deer_cluster_task_reads_failed_total"} {
			if v := metricValue(rt, m); v != 0 {
				t.Errorf("%s = %v with Redis up", m, v)
			}
		}
	}
}

func TestClusterIdempotencyKeyRepeatOnAnotherNodeGetsTheFirstResult(t *testing.T) {
	srv := redistest.Start(t)
	s, url := simServer(t, sim.DefaultKnobs())
	a, b := clusterPair(t, srv, url)
	ctx := context.Background()

	first := mustSubmit(t, a, chatCall("t1", "k1"))
	again := mustSubmit(t, b, chatCall("t1", "k1"))
	if again.ID != first.ID || string(again.Body) != string(first.Body) || again.Attempts != first.Attempts {
		t.Fatalf("repeat on B %+v, first on A %+v", again, first)
	}
	id, res, err := b.SubmitAsync(ctx, chatCall("t1", "k1"))
	if err != nil || res != nil || id != first.ID {
		t.Fatalf("async repeat on B: %q %+v %v, want id %s", id, res, err, first.ID)
	}
	if rep, err := b.TaskStatus(ctx, first.ID, "t1"); err != nil || rep.Result == nil || string(rep.Result.Body) != string(first.Body) {
		t.Fatalf("B's status of the first task: %+v %v", rep, err)
	}
	if n := chatCalls(s); n != 1 {
		t.Fatalf("%d upstream calls for one Idempotency-Key, want 1", n)
	}
	// The key is the caller's: another tenant's same key is its own call.
	other := mustSubmit(t, b, chatCall("t2", "k1"))
	if other.ID == first.ID || chatCalls(s) != 2 {
		t.Fatalf("another tenant's call %s (first %s), %d upstream calls", other.ID, first.ID, chatCalls(s))
	}
	if v := metricValue(b, "deer_cluster_task_remote_answers_total"); v < 3 {
		t.Errorf("deer_cluster_task_remote_answers_total on B = %v, want >= 3", v)
	}
}

func TestClusterIdempotencyKeyRepeatWaitsForTheFirstRunningElsewhere(t *testing.T) {
	srv := redistest.Start(t)
	u := newUpstream(t)
	a, b := clusterPair(t, srv, u.srv.URL)
	gate := u.hold(t)
	ctx := context.Background()
	task := func() *messages.Task {
		return &messages.Task{Upstream: "sim", Method: "POST", Path: "/v1/echo", Body: []byte(`{"x":1}`),
			Cache: messages.CacheBypass, Tenant: "t1", IdempotencyKey: "k-running"}
	}

	firstTask := task()
	onA := goSubmit(t, a, firstTask)
	actortest.Eventually(t, "the first call reaches the upstream", func() bool { return u.calls.Load() == 1 })
	id, res, err := b.SubmitAsync(ctx, task())
	if err != nil || res != nil || id != firstTask.ID {
		t.Fatalf("async repeat on B while A runs: %q %+v %v, want id %s", id, res, err, firstTask.ID)
	}
	if rep, err := b.TaskStatus(ctx, id, "t1"); err != nil || rep.Found {
		// A sync task has no record until it finishes (locally too, its id
		// is known only from its answer).
		t.Fatalf("status of a running sync task on B: %+v %v", rep, err)
	}
	onB := goSubmit(t, b, task())
	actortest.Eventually(t, "B's repeat waits on A's task", func() bool {
		return metricValue(b, "deer_cluster_task_repeats_waiting") == 1
	})
	close(gate)
	first, again := actortest.Await(t, "the first task's answer", onA), actortest.Await(t, "the repeat's answer", onB)
	if first == nil || again == nil || first.Status != messages.TaskSucceeded {
		t.Fatalf("first %+v, repeat %+v", first, again)
	}
	if again.ID != first.ID || string(again.Body) != string(first.Body) || again.Status != first.Status {
		t.Fatalf("repeat on B %+v, first on A %+v", again, first)
	}
	if n := u.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls for one Idempotency-Key, want 1", n)
	}
}

func TestClusterCancelReachesTheNodeRunningTheTask(t *testing.T) {
	srv := redistest.Start(t)
	u := newUpstream(t)
	a, b := clusterPair(t, srv, u.srv.URL)
	gate := u.hold(t)
	defer close(gate)
	ctx := context.Background()

	id, res, err := a.SubmitAsync(ctx, &messages.Task{Upstream: "sim", Method: "POST", Path: "/v1/echo",
		Cache: messages.CacheBypass, Tenant: "t1"})
	if err != nil || res != nil {
		t.Fatalf("SubmitAsync: %v %+v", err, res)
	}
	actortest.Eventually(t, "the call reaches the upstream", func() bool { return u.calls.Load() == 1 })
	actortest.Eventually(t, "B sees the task running", func() bool {
		rep, err := b.TaskStatus(ctx, id, "t1")
		return err == nil && rep.State == messages.TaskRunning
	})
	rep, err := b.CancelTask(ctx, id, "t1")
	if err != nil || !rep.Found || rep.Node == "" {
		t.Fatalf("cancel on B: %+v %v", rep, err)
	}
	for _, rt := range []*deer.Runtime{a, b} {
		actortest.Eventually(t, "the task ends cancelled", func() bool {
			rep, err := rt.TaskStatus(ctx, id, "t1")
			return err == nil && rep.Result != nil && rep.Result.Err != nil && rep.Result.Err.Code == messages.CodeCancelled
		})
	}
	actortest.Eventually(t, "the upstream call is abandoned", func() bool { return u.cancelled.Load() == 1 })
}

func TestClusterNodesServeTasksAloneWithRedisKilled(t *testing.T) {
	srv := redistest.Start(t)
	s, url := simServer(t, sim.DefaultKnobs())
	a, b := clusterPair(t, srv, url)
	ctx := context.Background()
	srv.Kill()

	id, res, err := a.SubmitAsync(ctx, chatCall("t1", ""))
	if err != nil || res != nil {
		t.Fatalf("SubmitAsync with Redis down: %v %+v", err, res)
	}
	actortest.Eventually(t, "A answers for its task", func() bool {
		rep, err := a.TaskStatus(ctx, id, "t1")
		return err == nil && rep.State == messages.TaskSucceeded
	})
	if rep, err := b.TaskStatus(ctx, id, "t1"); err != nil || rep.Found {
		t.Fatalf("B without Redis: %+v %v (want not found, no error)", rep, err)
	}
	// Idempotency-Key repeats are answered by the node's own book.
	first := mustSubmit(t, b, chatCall("t1", "k-down"))
	again := mustSubmit(t, b, chatCall("t1", "k-down"))
	if again.ID != first.ID || chatCalls(s) != 2 {
		t.Fatalf("local repeat %s, first %s, %d upstream calls (want 2)", again.ID, first.ID, chatCalls(s))
	}
	if v := metricValue(a, "deer_cluster_task_writes_failed_total"); v < 1 {
		t.Errorf("deer_cluster_task_writes_failed_total on A = %v, want >= 1", v)
	}
}

// The first task of a key was on a node that has left the cluster (its
// claim outlives it until its timeout): a repeat does not wait on it.
func TestClusterRepeatDoesNotWaitOnANodeThatLeft(t *testing.T) {
	srv := redistest.Start(t)
	s, url := simServer(t, sim.DefaultKnobs())
	_, b := clusterPair(t, srv, url)
	ctx := context.Background()
	task := chatCall("t1", "k-ghost")
	if err := srv.Client().Set(ctx, cluster.IdemKey(router.IdempotencyKey(task)), "gone-node\nghost-task", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	actortest.Eventually(t, "B's heartbeat lists the members", func() bool {
		h, ok := b.Health(ctx).Cluster.(cluster.Health)
		return ok && h.RedisUp && len(h.Members) == 2
	})
	res := mustSubmit(t, b, task)
	if res.ID == "ghost-task" || chatCalls(s) != 1 {
		t.Fatalf("repeat of a gone node's task: id %s, %d upstream calls", res.ID, chatCalls(s))
	}
}

// DELETE of a task whose node does not listen (gone, or cut off from
// Redis) says so rather than pretending to cancel it.
func TestClusterCancelOfATaskOnAGoneNodeSaysUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	_, url := simServer(t, sim.DefaultKnobs())
	_, b := clusterPair(t, srv, url)
	ctx := context.Background()
	rec := `{"id":"ghost","state":"running","node":"gone-node","owner":"t1"}`
	if err := srv.Client().Set(ctx, cluster.TaskKey("ghost"), rec, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if rep, err := b.TaskStatus(ctx, "ghost", "t1"); err != nil || rep.State != messages.TaskRunning {
		t.Fatalf("status: %+v %v", rep, err)
	}
	rep, err := b.CancelTask(ctx, "ghost", "t1")
	if err != nil || rep.Found || !rep.Unreachable || rep.Node != "gone-node" || rep.State != messages.TaskRunning {
		t.Fatalf("cancel: %+v %v", rep, err)
	}
}
