package deer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

// The cache, coalescing and embedding batching on the task path, through
// the whole runtime: real actors, the real bbolt file under a temp dir, and
// deersim (or a held upstream) over loopback.

// simServer is deersim over loopback.
func simServer(t testing.TB, k sim.Knobs) (*sim.Simulator, string) {
	s := sim.New(k)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv.URL
}

func cacheConfig(t testing.TB, url string) *conf.Config {
	cfg := testConfig(t)
	cfg.ConnectionPool.InitialConnections = 0
	cfg.Monitoring.DetailedLogging = false
	unlimited(cfg)
	up := conf.NewUpstream(url)
	up.Batch = "openai-embeddings"
	cfg.Upstreams = map[string]conf.Upstream{"sim": up}
	return cfg
}

func chatTask(temperature, content string) *messages.Task {
	body := `{"model":"sim-model","messages":[{"role":"user","content":` + fmt.Sprintf("%q", content) + `}]`
	if temperature != "" {
		body += `,"temperature":` + temperature
	}
	return &messages.Task{Upstream: "sim", Method: "POST", Path: "/v1/chat/completions", Body: []byte(body + "}")}
}

func embedTask(inputs ...string) *messages.Task {
	in, _ := json.Marshal(inputs)
	if len(inputs) == 1 {
		in, _ = json.Marshal(inputs[0])
	}
	// Priority 1, normal: level 0 would flush its batch at once
	// (batch_processing.priority_enabled).
	return &messages.Task{Upstream: "sim", Method: "POST", Path: "/v1/embeddings", Priority: 1,
		Body: []byte(`{"model":"sim-embed","input":` + string(in) + `}`)}
}

func mustSubmit(t testing.TB, rt *deer.Runtime, task *messages.Task) *messages.TaskResult {
	t.Helper()
	res, err := rt.Submit(context.Background(), task)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != messages.TaskSucceeded {
		t.Fatalf("task %s: %+v", res.ID, res.Err)
	}
	return res
}

func cacheStats(rt *deer.Runtime) deer.CacheStats {
	return rt.Metrics(context.Background()).AdvancedOptimizations.MemoryManager.CacheStats
}

// waitEntries waits until the tiers hold l1, l2 and l3 entries (-1: any):
// cache writes are fire-and-forget, so a test that wants the next call to
// hit a tier waits for the write to land.
func waitEntries(t testing.TB, rt *deer.Runtime, l1, l2, l3 int) {
	t.Helper()
	actortest.Eventually(t, fmt.Sprintf("cache entries l1=%d l2=%d l3=%d", l1, l2, l3), func() bool {
		cs := cacheStats(rt)
		return (l1 < 0 || cs.L1Entries == l1) && (l2 < 0 || cs.L2Entries == l2) && (l3 < 0 || cs.L3Entries == l3)
	})
}

func chatCalls(s *sim.Simulator) int64 { return s.Stats().Requests["/v1/chat/completions"] }

func TestRepeatedTemperatureZeroChatIsAnsweredFromL1(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	rt := start(t, cacheConfig(t, url))

	first := mustSubmit(t, rt, chatTask("0", "hello"))
	if first.Cache != messages.CacheMiss {
		t.Fatalf("first call: cache %q, want miss", first.Cache)
	}
	waitEntries(t, rt, 1, 0, 1) // written to L1 and, for restarts, to L3
	second := mustSubmit(t, rt, chatTask("0", "hello"))
	if second.Cache != messages.CacheHitL1 || second.ID == first.ID {
		t.Fatalf("second call: cache %q id %s (first %s), want hit-l1 under its own id", second.Cache, second.ID, first.ID)
	}
	if string(second.Body) != string(first.Body) || second.UpstreamStatus != 200 || second.Attempts != 0 {
		t.Errorf("hit: status %d attempts %d body %s, want the first answer %s", second.UpstreamStatus, second.Attempts, second.Body, first.Body)
	}
	if n := chatCalls(s); n != 1 {
		t.Errorf("upstream saw %d chat calls, want 1", n)
	}
	if cs := cacheStats(rt); cs.L1Hits != 1 {
		t.Errorf("cache_stats after one hit: %+v", cs)
	}
}

// Only what may be repeated is cached: a chat without temperature is
// OpenAI's default 1, and 0.7 samples; bypass neither reads nor writes.
func TestOnlyDeterministicChatsAreCached(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	rt := start(t, cacheConfig(t, url))
	for _, tc := range []struct {
		name string
		task func() *messages.Task
	}{
		{"no temperature", func() *messages.Task { return chatTask("", "a") }},
		{"temperature 0.7", func() *messages.Task { return chatTask("0.7", "a") }},
		{"bypass", func() *messages.Task { t := chatTask("0", "b"); t.Cache = messages.CacheBypass; return t }},
	} {
		before := chatCalls(s)
		for range 2 {
			if res := mustSubmit(t, rt, tc.task()); res.Cache != messages.CacheMiss && res.Cache != messages.CacheBypass {
				t.Errorf("%s: cache %q", tc.name, res.Cache)
			}
		}
		if n := chatCalls(s) - before; n != 2 {
			t.Errorf("%s: %d upstream calls for 2 tasks, want 2", tc.name, n)
		}
	}
	if cs := cacheStats(rt); cs.L1Entries != 0 || cs.L3Entries != 0 {
		t.Errorf("nothing should be stored: %+v", cs)
	}
}

// Tenants never see each other's entries: the caller's credential hash and
// namespace are part of the key, unless share_across_keys.
func TestTenantsDoNotShareEntries(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	cfg := cacheConfig(t, url)
	rt := start(t, cfg)
	as := func(tenant, ns string) *messages.Task {
		task := chatTask("0", "secret")
		task.Tenant, task.CacheNamespace = tenant, ns
		return task
	}
	mustSubmit(t, rt, as("alice", ""))
	waitEntries(t, rt, 1, -1, -1)
	if res := mustSubmit(t, rt, as("bob", "")); res.Cache != messages.CacheMiss {
		t.Errorf("bob got alice's entry: cache %q", res.Cache)
	}
	if res := mustSubmit(t, rt, as("alice", "project-2")); res.Cache != messages.CacheMiss {
		t.Errorf("another namespace got the entry: cache %q", res.Cache)
	}
	waitEntries(t, rt, 3, -1, -1)
	if res := mustSubmit(t, rt, as("alice", "")); res.Cache != messages.CacheHitL1 {
		t.Errorf("alice's repeat: cache %q, want hit-l1", res.Cache)
	}
	if n := chatCalls(s); n != 3 {
		t.Errorf("%d upstream calls, want 3", n)
	}

	if _, err := rt.UpdateConfig(context.Background(), []byte(`{"cache":{"share_across_keys":true}}`)); err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, rt, as("carol", "")) // stored under the shared key
	waitEntries(t, rt, 4, -1, -1)
	if res := mustSubmit(t, rt, as("dave", "")); res.Cache != messages.CacheHitL1 {
		t.Errorf("with share_across_keys: cache %q, want hit-l1", res.Cache)
	}
}

// L1 evictions demote to L2; an L2 hit is promoted into L1 (and leaves L2);
// an entry L2 pushed out is still in L3, written through when it was stored.
func TestTiersDemoteAndPromote(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	cfg := cacheConfig(t, url)
	cfg.Cache.L1Size, cfg.Cache.L2Size = 1, 1
	rt := start(t, cfg)

	mustSubmit(t, rt, chatTask("0", "A"))
	waitEntries(t, rt, 1, 0, 1)
	mustSubmit(t, rt, chatTask("0", "B")) // A goes down to L2
	waitEntries(t, rt, 1, 1, 2)
	if res := mustSubmit(t, rt, chatTask("0", "A")); res.Cache != messages.CacheHitL2 {
		t.Fatalf("A after B: cache %q, want hit-l2", res.Cache)
	}
	actortest.Eventually(t, "A promoted into L1", func() bool {
		return mustSubmit(t, rt, chatTask("0", "A")).Cache == messages.CacheHitL1
	})
	before := cacheStats(rt).Demotions
	mustSubmit(t, rt, chatTask("0", "C")) // A to L2; B, from L2, out of memory
	actortest.Eventually(t, "A demoted to L2 and B out of L2", func() bool {
		cs := cacheStats(rt)
		return cs.L3Entries == 3 && cs.Demotions >= before+2
	})
	if res := mustSubmit(t, rt, chatTask("0", "B")); res.Cache != messages.CacheHitL3 {
		t.Errorf("B after C: cache %q, want hit-l3", res.Cache)
	}
	if n := chatCalls(s); n != 3 {
		t.Errorf("%d upstream calls for 3 distinct chats, want 3", n)
	}
	// L3 may count more than B's hit: a repeat of A sent before A's
	// promotion reached L1 misses L1 and L2 (which gave its copy up) and
	// hits L3, as it should.
	cs := cacheStats(rt)
	if cs.L2Hits != 1 || cs.L3Hits < 1 || cs.L1Hits == 0 || cs.Demotions == 0 {
		t.Errorf("cache_stats: %+v", cs)
	}
}

// An entry lives X-Deer-Cache-TTL (or default_ttl) on the runtime's clock,
// in every tier.
func TestEntriesExpireOnTheClock(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := start(t, cacheConfig(t, url), deer.WithClock(clk))
	short := func() *messages.Task { task := chatTask("0", "brief"); task.CacheTTL = 10 * time.Second; return task }

	mustSubmit(t, rt, short())
	waitEntries(t, rt, 1, 0, 1)
	clk.Advance(9 * time.Second)
	if res := mustSubmit(t, rt, short()); res.Cache != messages.CacheHitL1 {
		t.Fatalf("within its TTL: cache %q", res.Cache)
	}
	clk.Advance(2 * time.Second)
	if res := mustSubmit(t, rt, short()); res.Cache != messages.CacheMiss {
		t.Errorf("past its TTL: cache %q, want miss (expired in L1 and L3)", res.Cache)
	}
	if n := chatCalls(s); n != 2 {
		t.Errorf("%d upstream calls, want 2", n)
	}
}

// L3 is a file: a new runtime on the same l3_path answers from it.
func TestL3SurvivesARestart(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	cfg := cacheConfig(t, url)
	rt, err := deer.Start(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	first := mustSubmit(t, rt, embedTask("kept"))
	waitEntries(t, rt, 1, 0, 1)
	if err := rt.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	rt = start(t, cfg)
	res := mustSubmit(t, rt, embedTask("kept"))
	if res.Cache != messages.CacheHitL3 || string(res.Body) != string(first.Body) {
		t.Errorf("after restart: cache %q body %s, want hit-l3 with %s", res.Cache, res.Body, first.Body)
	}
	if n := s.Stats().EmbeddingCalls; n != 1 {
		t.Errorf("%d upstream embedding calls, want 1", n)
	}
}

func readStream(t testing.TB, res *messages.TaskResult) []byte {
	t.Helper()
	if res.Stream == nil {
		t.Fatalf("task %s has no stream (cache %q, body %s)", res.ID, res.Cache, res.Body)
	}
	defer res.Stream.Close()
	b, err := io.ReadAll(res.Stream)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A complete SSE answer is stored and replayed byte for byte; a buffered
// request with the same body is another entry.
func TestStreamIsStoredAndReplayed(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	rt := start(t, cacheConfig(t, url))
	stream := func() *messages.Task {
		return &messages.Task{Upstream: "sim", Method: "POST", Path: "/v1/chat/completions", Stream: true,
			Body: []byte(`{"model":"sim-model","temperature":0,"stream":true,"messages":[{"role":"user","content":"tell me"}]}`)}
	}

	first := readStream(t, mustSubmit(t, rt, stream()))
	if !strings.Contains(string(first), "data: [DONE]") {
		t.Fatalf("first stream: %s", first)
	}
	waitEntries(t, rt, 1, 0, 1)
	res := mustSubmit(t, rt, stream())
	if res.Cache != messages.CacheHitL1 {
		t.Fatalf("repeat: cache %q", res.Cache)
	}
	if again := readStream(t, res); string(again) != string(first) {
		t.Errorf("replay differs:\n%s\nfirst:\n%s", again, first)
	}
	if res.Header["Content-Type"] == nil || !strings.HasPrefix(res.Header["Content-Type"][0], "text/event-stream") {
		t.Errorf("replayed headers %v", res.Header)
	}
	buffered := stream()
	buffered.Stream = false // the same body, read whole
	if r := mustSubmit(t, rt, buffered); r.Cache != messages.CacheMiss || r.Stream != nil {
		t.Errorf("buffered request with the stream's body: cache %q stream %v", r.Cache, r.Stream != nil)
	}
	if n := chatCalls(s); n != 2 {
		t.Errorf("%d upstream calls, want 2 (one stream, one buffered)", n)
	}
}

// heldUpstream answers every call with status after release is closed, and
// counts calls and calls cancelled while held.
type heldUpstream struct {
	url       string
	calls     atomic.Int64
	cancelled atomic.Int64
	release   chan struct{}
	status    int
}

func newHeldUpstream(t testing.TB, status int) *heldUpstream {
	u := &heldUpstream{release: make(chan struct{}), status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		select {
		case <-u.release:
		case <-r.Context().Done():
			u.cancelled.Add(1)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(u.status)
		fmt.Fprintf(w, `{"answer":%d}`, u.status)
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

func inFlight(rt *deer.Runtime) float64 {
	return promValue(rt, "deer_tasks_in_flight")
}

func promValue(rt *deer.Runtime, name string) float64 {
	for _, line := range strings.Split(prometheusText(rt), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// Identical calls in flight at once make one upstream call; every caller
// gets the answer under its own id.
func TestIdenticalCallsInFlightShareOneUpstreamCall(t *testing.T) {
	u := newHeldUpstream(t, 200)
	cfg := cacheConfig(t, u.url)
	cfg.ErrorRecovery.MaxRetries = 0
	rt := start(t, cfg)

	const n = 20
	results := make(chan *messages.TaskResult, n)
	for range n {
		go func() { results <- mustSubmit(t, rt, embedTask("same")) }()
	}
	actortest.Eventually(t, "all tasks in flight", func() bool { return inFlight(rt) == n })
	close(u.release)
	ids, labels := map[string]bool{}, map[string]int{}
	for range n {
		res := actortest.Await(t, "a coalesced task's answer", results)
		ids[res.ID] = true
		labels[res.Cache]++
		if string(res.Body) != `{"answer":200}` {
			t.Errorf("task %s body %s", res.ID, res.Body)
		}
	}
	if got := u.calls.Load(); got != 1 {
		t.Errorf("%d upstream calls for %d identical tasks, want 1", got, n)
	}
	if len(ids) != n || labels[messages.CacheMiss] != 1 || labels[messages.CacheCoalesced] != n-1 {
		t.Errorf("%d distinct ids, labels %v; want %d ids, 1 miss and %d coalesced", len(ids), labels, n, n-1)
	}
	if c := rt.Metrics(context.Background()).AdvancedOptimizations.ParallelExecutor.Coalesced; c != n-1 {
		t.Errorf("/metrics coalesced = %d, want %d", c, n-1)
	}
}

// A leader that fails fails its followers with the same error, with no
// retry stampede: one upstream call per attempt for all of them.
func TestCoalescedFollowersShareTheLeadersFailure(t *testing.T) {
	u := newHeldUpstream(t, 503)
	cfg := cacheConfig(t, u.url)
	cfg.ErrorRecovery.MaxRetries = 0
	rt := start(t, cfg)

	results := make(chan *messages.TaskResult, 5)
	for range 5 {
		go func() {
			res, err := rt.Submit(context.Background(), embedTask("doomed"))
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	actortest.Eventually(t, "all tasks in flight", func() bool { return inFlight(rt) == 5 })
	close(u.release)
	for range 5 {
		res := actortest.Await(t, "a task's answer", results)
		if res.Status != messages.TaskFailed || res.Err == nil || res.Err.Code != messages.CodeUpstream || res.UpstreamStatus != 503 {
			t.Errorf("task %s: %s %d %+v", res.ID, res.Status, res.UpstreamStatus, res.Err)
		}
	}
	if got := u.calls.Load(); got != 1 {
		t.Errorf("%d upstream calls, want 1", got)
	}
}

// A follower that gives up does not cancel the call the others wait for.
func TestFollowerCancellationLeavesTheLeader(t *testing.T) {
	u := newHeldUpstream(t, 200)
	rt := start(t, cacheConfig(t, u.url))

	leader := goSubmit(t, rt, embedTask("shared"))
	actortest.Eventually(t, "the leader's call", func() bool { return u.calls.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	follower := make(chan error, 1)
	go func() {
		_, err := rt.Submit(ctx, embedTask("shared"))
		follower <- err
	}()
	actortest.Eventually(t, "the follower in flight", func() bool { return inFlight(rt) == 2 })
	cancel()
	if err := actortest.Await(t, "the cancelled follower to return", follower); err == nil {
		t.Error("the cancelled follower got an answer")
	}
	actortest.Eventually(t, "the follower gone", func() bool { return inFlight(rt) == 1 })
	close(u.release)
	if res := actortest.Await(t, "the leader's answer", leader); res.Status != messages.TaskSucceeded || res.Cache != messages.CacheMiss {
		t.Errorf("leader: %s %q %+v", res.Status, res.Cache, res.Err)
	}
	if u.calls.Load() != 1 || u.cancelled.Load() != 0 {
		t.Errorf("upstream calls %d, cancelled %d; want 1 and 0", u.calls.Load(), u.cancelled.Load())
	}
}

type embeddingAnswer struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// Concurrent embedding calls are combined into one upstream call of up to
// batch_size inputs and split back by index, each caller getting exactly
// its own vectors.
func TestEmbeddingsAreBatchedAndSplitByIndex(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	cfg := cacheConfig(t, url)
	cfg.BatchProcessing.BatchSize = 10
	cfg.BatchProcessing.BatchTimeout = 60 // flushes by size only
	cfg.BatchProcessing.AdaptiveSizing = false
	rt := start(t, cfg)

	callers := [][]string{{"a1"}, {"b1", "b2", "b3"}, {"c1"}, {"d1", "d2", "d3", "d4", "d5"}}
	var wg sync.WaitGroup
	results := make([]*messages.TaskResult, len(callers))
	for i, inputs := range callers {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = mustSubmit(t, rt, embedTask(inputs...)) }()
	}
	wg.Wait()
	if st := s.Stats(); st.EmbeddingCalls != 1 || !reflect.DeepEqual(st.EmbeddingInputCounts, []int{10}) {
		t.Fatalf("upstream embedding calls %d with inputs %v, want one call of 10", st.EmbeddingCalls, st.EmbeddingInputCounts)
	}
	tokens := 0
	for i, res := range results {
		var got embeddingAnswer
		if err := json.Unmarshal(res.Body, &got); err != nil {
			t.Fatalf("caller %d: %v: %s", i, err, res.Body)
		}
		if len(got.Data) != len(callers[i]) {
			t.Fatalf("caller %d got %d embeddings, want %d", i, len(got.Data), len(callers[i]))
		}
		for j, d := range got.Data {
			if d.Index != j || !reflect.DeepEqual(d.Embedding, sim.Vector(callers[i][j], sim.DefaultDimensions)) {
				t.Errorf("caller %d, embedding %d: index %d, not the vector of %q", i, j, d.Index, callers[i][j])
			}
		}
		tokens += got.Usage.TotalTokens
	}
	if tokens != 10 { // deersim counts a word a token
		t.Errorf("usage over the callers sums to %d, want the combined call's 10", tokens)
	}
	if b := rt.Metrics(context.Background()).BatchProcessor.Upstreams["sim"]; b == nil || b.BatchesSent != 1 || b.InputsSent != 10 {
		t.Errorf("batch stats %+v", b)
	}
}

// A combined call that fails with a 4xx is retried input by input: the bad
// input fails only its own caller.
func TestBatch4xxIsRetriedInputByInput(t *testing.T) {
	s, url := simServer(t, sim.DefaultKnobs())
	cfg := cacheConfig(t, url)
	cfg.BatchProcessing.BatchSize = 3
	cfg.BatchProcessing.BatchTimeout = 60
	cfg.BatchProcessing.AdaptiveSizing = false
	rt := start(t, cfg)

	tooLong := strings.Repeat("word ", sim.MaxInputTokens+1)
	inputs := []string{"fine", tooLong, "also fine"}
	results := make([]*messages.TaskResult, len(inputs))
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = mustSubmit(t, rt, embedTask(in)) }()
	}
	wg.Wait()
	for i, res := range results {
		want := 200
		if i == 1 {
			want = 400
		}
		if res.UpstreamStatus != want {
			t.Errorf("caller %d: upstream status %d, want %d (%s)", i, res.UpstreamStatus, want, res.Body)
		}
	}
	if n := s.Stats().Requests["/v1/embeddings"]; n != 4 {
		t.Errorf("%d upstream embedding requests, want 4 (the batch, then each input)", n)
	}
}

// Beyond max_queue_size pending items an embedding call is refused with
// queue_full (429 with Retry-After at the API), not dropped.
func TestFullBatchQueueIsRefused(t *testing.T) {
	_, url := simServer(t, sim.DefaultKnobs())
	cfg := cacheConfig(t, url)
	cfg.BatchProcessing.BatchSize = 10
	cfg.BatchProcessing.BatchTimeout = 0.5
	cfg.BatchProcessing.AdaptiveSizing = false
	cfg.BatchProcessing.MaxQueueSize = 2
	rt := start(t, cfg)

	results := make(chan *messages.TaskResult, 3)
	for i := range 3 {
		go func() {
			res, err := rt.Submit(context.Background(), embedTask(fmt.Sprintf("q%d", i)))
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	codes := map[string]int{}
	for range 3 {
		res := actortest.Await(t, "a task's answer", results)
		if res.Err != nil {
			codes[res.Err.Code]++
		} else {
			codes[res.Status]++
		}
	}
	if codes[messages.CodeQueueFull] != 1 || codes[messages.TaskSucceeded] != 2 {
		t.Errorf("outcomes %v, want 2 succeeded and 1 queue_full", codes)
	}
}

// crashOnce makes the actor named name panic on the first message of type T
// it receives; supervision restarts it and redelivers the message.
func crashOnce[T any](name string) (deer.Option, *atomic.Int32) {
	var crashed atomic.Int32
	return deer.WithReceive(func(actorName string, next actor.ReceiverFunc) actor.ReceiverFunc {
		if actorName != name {
			return next
		}
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if _, ok := env.Message.(T); ok && crashed.CompareAndSwap(0, 1) {
				panic("test: " + name + " crashes")
			}
			next(c, env)
		}
	}), &crashed
}

// A crash of a cache tier or of batch/U in the middle of a task loses no
// task: the message it crashed on is redelivered after the restart, and
// every task gets exactly one answer.
func TestCrashOfACacheTierOrBatcherLosesNoTask(t *testing.T) {
	for _, tc := range []struct {
		actor string
		crash func(string) (deer.Option, *atomic.Int32)
		task  func(i int) *messages.Task
	}{
		{"cache/l2", crashOnce[*messages.CacheLookup], func(i int) *messages.Task { return chatTask("0", fmt.Sprint("l2-", i)) }},
		{"cache/l3", crashOnce[*messages.CacheLookup], func(i int) *messages.Task { return chatTask("0", fmt.Sprint("l3-", i)) }},
		{"cache/l1", crashOnce[*messages.CachePut], func(i int) *messages.Task { return chatTask("0", fmt.Sprint("l1-", i)) }},
		{"batch/sim", crashOnce[*messages.EnqueueBatchItem], func(i int) *messages.Task { return embedTask(fmt.Sprint("b-", i)) }},
	} {
		t.Run(strings.ReplaceAll(tc.actor, "/", "_"), func(t *testing.T) {
			_, url := simServer(t, sim.DefaultKnobs())
			cfg := cacheConfig(t, url)
			cfg.BatchProcessing.BatchTimeout = 0.05
			opt, crashed := tc.crash(tc.actor)
			rt := start(t, cfg, opt)
			const n = 8
			results := make(chan *messages.TaskResult, n)
			for i := range n {
				go func() {
					res, err := rt.Submit(context.Background(), tc.task(i))
					if err != nil {
						t.Error(err)
					}
					results <- res
				}()
			}
			for range n {
				if res := actortest.Await(t, "a task's answer", results); res.Status != messages.TaskSucceeded {
					t.Errorf("task %s: %+v", res.ID, res.Err)
				}
			}
			// A store into L1 may come after the tasks' answers.
			actortest.Eventually(t, tc.actor+" crashed", func() bool { return crashed.Load() == 1 })
			actortest.Eventually(t, tc.actor+" restarted", func() bool {
				return rt.Metrics(context.Background()).Actors.Restarts[tc.actor] == 1
			})
			if f := inFlight(rt); f != 0 {
				t.Errorf("%v tasks still in flight", f)
			}
		})
	}
}
