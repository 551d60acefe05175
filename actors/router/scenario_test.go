package router

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/cache"
	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// The router core's scenario tests, in the style of etcd-io/raft's
// interaction tests: each file in testdata/ is a script of steps, each step
// a command line, "----", and the effects the book returned, one per line.
// `go test ./actors/router -run TestScenarios -rewrite` regenerates the
// expected output; review the diff before committing it.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/ scenarios")

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata/: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenario(t, file)
		})
	}
}

// step is one command of a script, the comment lines before it, and the
// output it is expected to give.
type step struct {
	notes []string
	cmd   string
	want  string
}

func parseScript(t *testing.T, data string) []step {
	var steps []step
	var notes []string
	lines := strings.Split(data, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			notes = append(notes, line)
			continue
		}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "----" {
			t.Fatalf("line %d: %q is not followed by ----", i+1, line)
		}
		i += 2
		var out []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			out = append(out, lines[i])
		}
		steps = append(steps, step{notes: notes, cmd: line, want: strings.Join(out, "\n")})
		notes = nil
	}
	return steps
}

func runScenario(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	steps := parseScript(t, string(data))
	h := newHarness()
	var rewritten strings.Builder
	for _, st := range steps {
		got := h.do(t, st.cmd)
		if *rewrite {
			for _, n := range st.notes {
				rewritten.WriteString(n + "\n")
			}
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", st.cmd, got)
			continue
		}
		if got != st.want {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", file, st.cmd, indent(got), indent(st.want))
		}
	}
	if *rewrite {
		out := strings.TrimSuffix(rewritten.String(), "\n")
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// harness drives a Book with deterministic time, ids, an L1 map and fake
// shared streams.
type harness struct {
	t0, now time.Time
	cfg     *conf.Config
	book    *Book
	ids     int
	l1      map[string][]byte
	keys    map[string]string // cache key → its short alias k1, k2, …
	shared  map[uint64]*fakeShared
	readers int
}

type fakeShared struct {
	seq   uint64
	ended bool
	h     *harness
}

func (f *fakeShared) Join() (io.ReadCloser, bool) {
	if f.ended {
		return nil, false
	}
	f.h.readers++
	return io.NopCloser(strings.NewReader(fmt.Sprintf("reader %d of stream %d", f.h.readers, f.seq))), true
}

type fakeL1 struct{ h *harness }

func (l fakeL1) Lookup(_ time.Time, key string) ([]byte, time.Time, bool) {
	v, ok := l.h.l1[key]
	return v, time.Time{}, ok
}

func newHarness() *harness {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &harness{t0: t0, now: t0, l1: map[string][]byte{}, keys: map[string]string{}, shared: map[uint64]*fakeShared{}}
	h.cfg = conf.Default()
	h.cfg.Upstreams = map[string]conf.Upstream{"sim": conf.NewUpstream("http://sim")}
	h.cfg.ParallelExecution.MaxWorkers = 2
	h.book = NewBook(h.cfg, Env{
		L1: fakeL1{h},
		Share: func(src io.ReadCloser, seq uint64) Shared {
			f := &fakeShared{seq: seq, h: h}
			h.shared[seq] = f
			return f
		},
		NewID: func() string { h.ids++; return fmt.Sprintf("c%d", h.ids) },
	})
	h.workers(2)
	return h
}

func (h *harness) workers(n int) {
	if n < len(h.book.workers.slots) {
		h.book.Retire(h.now, n)
		return
	}
	for _, s := range h.book.workers.grow(n) {
		h.book.workers.setPID(s, actor.NewPID("local", s.name))
	}
}

// args are a command's key=value words; a bare word is key=true.
type args map[string]string

func parseArgs(words []string) args {
	a := args{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			v = "true"
		}
		a[k] = v
	}
	return a
}

func (a args) dur(t *testing.T, k string) time.Duration {
	if a[k] == "" {
		return 0
	}
	d, err := time.ParseDuration(a[k])
	if err != nil {
		t.Fatalf("%s=%q: %v", k, a[k], err)
	}
	return d
}

func (a args) int(t *testing.T, k string, def int) int {
	if a[k] == "" {
		return def
	}
	n, err := strconv.Atoi(a[k])
	if err != nil {
		t.Fatalf("%s=%q: %v", k, a[k], err)
	}
	return n
}

func (h *harness) do(t *testing.T, line string) string {
	words := strings.Fields(line)
	a := parseArgs(words[1:])
	var fx []Effect
	switch words[0] {
	case "config":
		h.configure(t, a)
		fx = h.book.Configure(h.now, h.cfg)
	case "submit":
		task := h.task(t, a)
		msg := &messages.SubmitTask{Task: task, Async: a["async"] == "true"}
		from := a["from"]
		if from == "" {
			from = "caller-" + task.ID
		}
		fx = h.book.Submit(h.now, msg, actor.NewPID("local", from))
	case "prime":
		// prime <task args> body-answer=…: an answer in L1 for that task's key.
		task := h.task(t, a)
		plan := cache.PlanFor(task, h.cfg)
		ans := cache.Answer{Status: 200, Body: []byte(a["answer"]), Stream: task.Stream}
		if task.Stream {
			ans.Chunks = []int{len(ans.Body)}
		}
		h.l1[plan.Key] = cache.EncodeAnswer(ans)
		return "primed " + h.alias(plan.Key)
	case "finish":
		fx = h.finish(t, a)
	case "idle":
		e := h.slotOf(t, a)
		fx = h.book.WorkerIdle(h.now, e, a["id"])
	case "lookup":
		msg := &messages.CacheLookedUp{Ref: uint64(a.int(t, "ref", 0))}
		if tier := a["hit"]; tier != "" {
			msg.Found, msg.Tier = true, tier
			msg.Value = cache.EncodeAnswer(cache.Answer{Status: 200, Body: []byte(a["answer"])})
		}
		fx = h.book.CacheLookedUp(h.now, msg)
	case "stream-end":
		seq := uint64(a.int(t, "seq", 0))
		if f := h.shared[seq]; f != nil {
			f.ended = true
		}
		msg := &StreamEnded{Seq: seq, Complete: a["complete"] == "true"}
		if msg.Complete {
			msg.Data, msg.Chunks = []byte(a["data"]), []int{len(a["data"])}
		}
		fx = h.book.StreamEnded(h.now, msg)
	case "batch-ready":
		msg := &messages.BatchReady{Upstream: "sim"}
		for _, id := range strings.Split(a["ids"], ",") {
			e := h.book.tasks[id]
			if e == nil {
				msg.Items = append(msg.Items, &messages.BatchItem{ID: 999})
				continue
			}
			msg.Items = append(msg.Items, &messages.BatchItem{ID: e.ref})
		}
		fx = h.book.BatchReady(h.now, msg)
	case "batch-reject":
		e := h.book.tasks[a["id"]]
		if e == nil {
			t.Fatalf("batch-reject: no task %s", a["id"])
		}
		fx = h.book.BatchRejected(h.now, &messages.BatchRejected{ID: e.ref, Reason: a["reason"]})
	case "cancel":
		var res *messages.TaskCancelled
		fx, res = h.book.Cancel(h.now, &messages.CancelTask{ID: a["id"], Tenant: a["tenant"], ClientGone: a["client-gone"] == "true"})
		fx = append(fx, Answer{To: actor.NewPID("local", "canceller"), Result: &messages.TaskResult{
			ID: res.ID, Status: fmt.Sprintf("found=%v state=%s", res.Found, res.State)}})
	case "status":
		r := h.book.Status(h.now, &messages.TaskStatusQuery{ID: a["id"], Tenant: a["tenant"]})
		return fmt.Sprintf("found=%v state=%s", r.Found, r.State)
	case "tick":
		d, err := time.ParseDuration(words[1])
		if err != nil {
			t.Fatalf("tick %q: %v", words[1], err)
		}
		h.now = h.now.Add(d)
		if due := h.book.watchdogDue; !due.IsZero() && !h.now.Before(due) {
			fx = h.book.Watchdog(h.now, due)
		}
	case "lost":
		// As the router does: the dead worker's slot gets a new actor (free),
		// then the book hears of the task it lost.
		if s := h.slotOf(t, a); s != nil {
			h.book.workers.free(s)
		}
		fx = h.book.WorkerLost(h.now, a["id"], "its worker stopped")
	case "delivery-failed":
		e := h.book.tasks[a["id"]]
		if e == nil {
			t.Fatalf("delivery-failed: no task %s", a["id"])
		}
		fx = h.book.DeliveryFailed(h.now, &messages.DeliveryFailed{Message: &worker.Run{Task: e.task}, Attempts: 3, Reason: "boom"})
	case "restart":
		fx = slices.Clone(h.book.Restarted(h.now)) // the next step reuses the book's buffer
		h.workers(h.cfg.ParallelExecution.MaxWorkers)
		fx = append(fx, h.book.Configure(h.now, h.cfg)...)
	case "drain":
		fx = h.book.Drain(h.now, actor.NewPID("local", "drainer"))
	case "drain-expired":
		fx = h.book.DrainExpired(h.now)
	case "state":
		return h.state()
	default:
		t.Fatalf("unknown command %q", words[0])
	}
	h.checkInvariants(t, line)
	lines := make([]string, 0, len(fx))
	for _, e := range fx {
		lines = append(lines, h.describe(e))
	}
	if len(lines) == 0 {
		return "ok"
	}
	return strings.Join(lines, "\n")
}

func (h *harness) describe(e Effect) string {
	s := describe(e, h.t0)
	for key, alias := range h.keys {
		s = strings.ReplaceAll(s, key, alias)
	}
	if st, ok := e.(StoreCache); ok {
		s = strings.ReplaceAll(s, st.Key, h.alias(st.Key))
	}
	if lk, ok := e.(LookupCache); ok {
		s = strings.ReplaceAll(s, lk.Key, h.alias(lk.Key))
	}
	return s
}

func (h *harness) alias(key string) string {
	if a, ok := h.keys[key]; ok {
		return a
	}
	a := fmt.Sprintf("k%d", len(h.keys)+1)
	h.keys[key] = a
	return a
}

func (h *harness) configure(t *testing.T, a args) {
	c := *h.cfg
	if v := a["workers"]; v != "" {
		c.ParallelExecution.MaxWorkers = a.int(t, "workers", 0)
	}
	c.ParallelExecution.QueueSize = a.int(t, "queue", c.ParallelExecution.QueueSize)
	c.ParallelExecution.PriorityLevels = a.int(t, "levels", c.ParallelExecution.PriorityLevels)
	if v := a["timeout"]; v != "" {
		c.ParallelExecution.WorkerTimeout = a.dur(t, "timeout").Seconds()
	}
	if a["collaboration"] != "" {
		c.EnableCollaboration = a["collaboration"] == "true"
	}
	if a["advanced"] != "" {
		c.EnableAdvancedOptimization = a["advanced"] == "true"
	}
	if a["lb"] != "" {
		c.ParallelExecution.LoadBalancing = a["lb"] == "true"
	}
	ups := map[string]conf.Upstream{}
	for k, v := range c.Upstreams {
		ups[k] = v
	}
	if v := a["batch"]; v != "" {
		up := ups["sim"]
		up.Batch = v
		ups["sim"] = up
	}
	c.Upstreams = ups
	h.cfg = &c
	h.workers(c.ParallelExecution.MaxWorkers)
}

// task builds a task from submit's words: id, prio, path, method, body,
// temp (a chat body with that temperature), input (an embeddings body),
// stream, cache, timeout, idem.
func (h *harness) task(t *testing.T, a args) *messages.Task {
	task := &messages.Task{
		ID: a["id"], Upstream: "sim", Method: "POST", Path: "/v1/chat/completions",
		Priority: a.int(t, "prio", 1), Cache: a["cache"], Timeout: a.dur(t, "timeout"),
		Stream: a["stream"] == "true", IdempotencyKey: a["idem"], Tenant: a["tenant"],
	}
	if v := a["upstream"]; v != "" {
		task.Upstream = v
	}
	if v := a["method"]; v != "" {
		task.Method = v
	}
	if v := a["path"]; v != "" {
		task.Path = v
	}
	switch {
	case a["input"] != "":
		task.Path = "/v1/embeddings"
		inputs := strings.Split(a["input"], ",")
		if len(inputs) == 1 {
			task.Body = []byte(fmt.Sprintf(`{"model":"emb","input":%q}`, inputs[0]))
		} else {
			js, _ := json.Marshal(inputs)
			task.Body = []byte(fmt.Sprintf(`{"model":"emb","input":%s}`, js))
		}
	case a["temp"] != "":
		task.Body = []byte(fmt.Sprintf(`{"model":"m","temperature":%s,"messages":[{"role":"user","content":"hi"}]}`, a["temp"]))
	default:
		task.Body = []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	}
	if v := a["body"]; v != "" {
		task.Body = []byte(v)
	}
	return task
}

func (h *harness) slotOf(t *testing.T, a args) *slot {
	if w := a["worker"]; w != "" {
		for _, s := range h.book.workers.slots {
			if s.name == "worker/"+w {
				return s
			}
		}
		return nil
	}
	e := h.book.tasks[a["id"]]
	if e == nil || e.slot == nil {
		return nil
	}
	return e.slot
}

// finish reports a worker's result: status=N (default 200), body=…, fail=code,
// stream (a streamed 2xx), embeddings (an OpenAI answer for the inputs of
// the task's body), attempts=N (default 1).
func (h *harness) finish(t *testing.T, a args) []Effect {
	s := h.slotOf(t, a)
	res := &messages.TaskResult{ID: a["id"], Status: messages.TaskSucceeded, UpstreamStatus: a.int(t, "status", 200),
		Cache: messages.CacheMiss, Attempts: a.int(t, "attempts", 1)}
	if e := h.book.tasks[a["id"]]; e != nil && e.task.Cache == messages.CacheBypass {
		res.Cache = messages.CacheBypass
	}
	switch {
	case a["fail"] != "":
		res.Status, res.Err = messages.TaskFailed, &messages.TaskError{Code: a["fail"], Message: "it failed"}
	case res.UpstreamStatus >= 500 || res.UpstreamStatus == 429:
		res.Status, res.Err = messages.TaskFailed, &messages.TaskError{Code: messages.CodeUpstream, Message: "upstream answered"}
	}
	res.Body = []byte(a["body"])
	if a["stream"] == "true" {
		res.Stream, res.Body = io.NopCloser(strings.NewReader("data: x\n\n")), nil
	}
	if a["embeddings"] == "true" {
		res.Body = embeddingsAnswer(t, h.book.tasks[a["id"]].task.Body)
	}
	return h.book.Finished(h.now, &worker.Finished{ID: a["id"], Result: res, Idle: a["busy"] != "true"}, s)
}

// embeddingsAnswer is what an OpenAI-compatible upstream answers to body:
// one embedding per input, [i] its index, 2 tokens per input.
func embeddingsAnswer(t *testing.T, body []byte) []byte {
	var req struct{ Input any }
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	n := 1
	if l, ok := req.Input.([]any); ok {
		n = len(l)
	}
	var data []string
	for i := range n {
		data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":[%d]}`, i, i))
	}
	return []byte(fmt.Sprintf(`{"object":"list","data":[%s],"model":"emb","usage":{"prompt_tokens":%d,"total_tokens":%d}}`,
		strings.Join(data, ","), 2*n, 2*n))
}

// state lists the book: tasks with their state, the queue, flights, workers.
func (h *harness) state() string {
	var b bytes.Buffer
	for _, e := range h.book.sortedEntries() {
		fmt.Fprintf(&b, "task %s %s", e.task.ID, e.state)
		if e.detached {
			b.WriteString(" detached")
		}
		if e.flight != nil {
			fmt.Fprintf(&b, " flight=%s", h.alias(e.flight.key))
		}
		if !e.due.IsZero() {
			fmt.Fprintf(&b, " due=+%v", e.due.Sub(h.t0))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "queue %d", h.book.queue.len())
	keys := make([]string, 0, len(h.book.flights))
	for k := range h.book.flights {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := h.book.flights[k]
		fmt.Fprintf(&b, "\nflight %s followers=%d streaming=%v", h.alias(k), len(f.followers), f.stream != nil)
	}
	for _, s := range h.book.workers.slots {
		fmt.Fprintf(&b, "\n%s busy=%v %s", s.name, s.busy, s.task)
	}
	return b.String()
}

// checkInvariants fails the scenario when the book's bookkeeping disagrees
// with itself after a step.
func (h *harness) checkInvariants(t *testing.T, after string) {
	t.Helper()
	b := h.book
	lookups, queued := 0, 0
	for id, e := range b.tasks {
		if e.task.ID != id {
			t.Errorf("after %q: task %s filed under %s", after, e.task.ID, id)
		}
		switch e.state {
		case stateLookup:
			lookups++
		case messages.TaskQueued:
			queued++
		case stateBatching:
			if b.refs[e.ref] != e {
				t.Errorf("after %q: batched task %s has no ref", after, id)
			}
		case messages.TaskRunning:
			if e.slot == nil || e.slot.task != id || !e.slot.busy {
				t.Errorf("after %q: running task %s is not on its worker", after, id)
			}
		}
	}
	if lookups != b.lookups {
		t.Errorf("after %q: %d tasks look up the cache, the book counts %d", after, lookups, b.lookups)
	}
	if queued != b.queue.len() {
		t.Errorf("after %q: %d tasks are queued, the queue holds %d", after, queued, b.queue.len())
	}
	for _, s := range b.workers.slots {
		if !s.busy && s.pid != nil && !slices.Contains(b.workers.idle[b.workers.idleHead:], s) {
			t.Errorf("after %q: %s is free but not in the idle queue: no task would reach it", after, s.name)
		}
		if !s.busy && s.pid != nil && queued > 0 {
			t.Errorf("after %q: %s is free while %d tasks wait", after, s.name, queued)
		}
	}
	for ref, e := range b.refs {
		if b.tasks[e.task.ID] != e {
			t.Errorf("after %q: ref %d points at task %s, which the book forgot", after, ref, e.task.ID)
		}
	}
	for e, ce := range b.carried {
		if b.tasks[e.task.ID] != e || b.tasks[ce.task.ID] != ce || !slices.Contains(ce.batch.items, e) {
			t.Errorf("after %q: batched task %s is carried by a call the book forgot, or by one that does not carry it", after, e.task.ID)
		}
	}
	for key, f := range b.flights {
		if f.leader != nil && b.tasks[f.leader.task.ID] != f.leader {
			t.Errorf("after %q: flight %s leads with a forgotten task", after, h.alias(key))
		}
	}
}
