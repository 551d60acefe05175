package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/load"
)

// withCacheResults gives res cache, coalescing, batching and Zipf results
// that meet their goals, and their Phase C rows.
func withCacheResults(res *Results) *Results {
	res.CacheHit = &CacheHit{
		Body: cacheableChat("x"), Targets: []string{Direct, Nginx, Deerd}, FillCalls: 2,
		Rounds: &load.RoundsResult{Rounds: 7, PerRound: 25, Warmup: 15,
			Targets: []load.TargetRounds{{URL: "d", P50US: 240}, {URL: "n", P50US: 340}, {URL: "x", P50US: 320, P99US: 900}},
			Diffs:   []load.Diff{{URL: "n", MedianUS: 100, IQRUS: 30}, {URL: "x", MedianUS: 80, IQRUS: 20}}},
		Answers: map[string]int{"hit-l1": 190},
	}
	res.Coalescing = &Coalescing{Calls: 50, SimLatency: 500 * time.Millisecond,
		Deerd: &Burst{Calls: 50, UpstreamCalls: 1, Statuses: map[int]int{200: 50}, Answers: map[string]int{"miss": 1, "coalesced": 49}, P50US: 501_000, MaxUS: 503_000},
		Nginx: &Burst{Calls: 50, UpstreamCalls: 50, Statuses: map[int]int{200: 50}, Answers: map[string]int{noHeader: 50}, P50US: 501_000, MaxUS: 502_000}}
	res.Batching = &Batching{Requests: 1000, Rate: 500, SimLatency: 60 * time.Millisecond, BatchSize: 10, BatchTimeout: 1.5,
		Deerd: &EmbedRun{Sent: 1000, OK: 1000, Statuses: map[int]int{200: 1000}, Answers: map[string]int{"miss": 1000},
			UpstreamCalls: 100, Inputs: 1000, MaxInputs: 10, AddedP50US: 12_000, AddedP99US: 25_000},
		Nginx: &EmbedRun{Sent: 1000, OK: 1000, Statuses: map[int]int{200: 1000}, Answers: map[string]int{noHeader: 1000},
			UpstreamCalls: 1000, Inputs: 1000, MaxInputs: 1, AddedP50US: 300, AddedP99US: 2000}}
	res.Zipf = &ZipfRun{Keys: 10000, Requests: 30000, S: 1, Seed: 5, Rate: 1000, Distinct: 6000, Capacity: 16000, IdealHits: 24000,
		Statuses: map[int]int{200: 30000}, Answers: map[string]int{"hit-l1": 18000, "hit-l2": 4000, "hit-l3": 1500, "coalesced": 100, "miss": 6400},
		UpstreamCalls: 6400, HitP50US: 300, MissP50US: 600}
	res.PhaseC = append(res.PhaseC, Feature{Name: CacheHitFeature}, Feature{Name: CoalesceFeature}, Feature{Name: BatchFeature},
		Feature{Name: ZipfFeature}, Feature{Name: "Breaker fast-fail", How: "h", Deerd: "d", Nginx: "n"})
	return res
}

// cacheGoal is the goal of res whose text starts with prefix.
func cacheGoal(t *testing.T, res *Results, prefix string) Goal {
	t.Helper()
	for _, g := range res.Goals() {
		if strings.HasPrefix(g.Goal, prefix) {
			return g
		}
	}
	t.Fatalf("no goal %q", prefix)
	return Goal{}
}

const (
	hitGoal      = "Phase C: deerd's added latency on an L1 hit"
	coalesceGoal = "Phase C: identical in-flight calls"
	batchGoal    = "Phase C: embedding batching"
	zipfGoal     = "Phase C: under Zipf(1.0) requests"
)

func TestCacheGoalsMetWithTheirNumbers(t *testing.T) {
	res := withCacheResults(newResults(FullPlan()))
	for prefix, want := range map[string]string{
		hitGoal:      "deerd L1 hit 80 µs, nginx 100 µs: 0.80 ×; 190/190 answers hit-l1; upstream calls during the hit rounds: 0",
		coalesceGoal: "50 calls at once: 1 upstream call(s); X-Deer-Cache 49 × coalesced, 1 × miss",
		batchGoal:    "100 upstream calls for 1000 inputs (10.0 × fewer); p50 added 12.00 ms, p99 25.00 ms vs batch_timeout 1.5s",
		zipfGoal:     "hits 78.3% + coalesced 0.3% = 78.7% of requests; ideal 80.0%: 98.3% of ideal",
	} {
		g := cacheGoal(t, res, prefix)
		if g.Met != "met" || !strings.Contains(g.Measured, want) {
			t.Errorf("%s: %s (%s), want met saying %q", prefix, g.Met, g.Measured, want)
		}
	}
}

func TestCacheGoalsMissed(t *testing.T) {
	for _, tc := range []struct {
		name, goal, says string
		spoil            func(*Results)
	}{
		{"L1 hit slower than nginx", hitGoal, "deerd L1 hit 150 µs, nginx 100 µs: 1.50 ×", func(r *Results) { r.CacheHit.Rounds.Diffs[1].MedianUS = 150 }},
		{"an answer not from L1", hitGoal, "not all answers came from L1 (189 × hit-l1, 1 × miss)", func(r *Results) {
			r.CacheHit.Answers = map[string]int{"hit-l1": 189, "miss": 1}
		}},
		{"an upstream call during the rounds", hitGoal, "upstream calls during the hit rounds: 1", func(r *Results) { r.CacheHit.UpstreamCalls = 1 }},
		{"the rounds failed", hitGoal, "status 502", func(r *Results) { r.CacheHit.Error = "POST x: status 502" }},
		{"two upstream calls", coalesceGoal, "2 upstream call(s)", func(r *Results) { r.Coalescing.Deerd.UpstreamCalls = 2 }},
		{"a failed follower", coalesceGoal, "49 × 200, 1 × 502", func(r *Results) { r.Coalescing.Deerd.Statuses = map[int]int{200: 49, 502: 1} }},
		{"only 5 × fewer calls", batchGoal, "200 upstream calls for 1000 inputs (5.0 × fewer)", func(r *Results) { r.Batching.Deerd.UpstreamCalls = 200 }},
		{"p50 beyond batch_timeout", batchGoal, "p50 added 1600 ms", func(r *Results) { r.Batching.Deerd.AddedP50US = 1_600_000 }},
		{"failed embeddings", batchGoal, "990/1000 succeeded", func(r *Results) { r.Batching.Deerd.OK = 990 }},
		{"hit ratio well under ideal", zipfGoal, "ideal 80.0%: 92.1% of ideal", func(r *Results) {
			r.Zipf.Answers["hit-l3"], r.Zipf.Answers["miss"] = 0, 7900
		}},
	} {
		res := withCacheResults(newResults(FullPlan()))
		tc.spoil(res)
		g := cacheGoal(t, res, tc.goal)
		if g.Met != "missed" {
			t.Errorf("%s: %s (%s), want missed", tc.name, g.Met, g.Measured)
		}
		if !strings.Contains(g.Measured, tc.says) {
			t.Errorf("%s: measured %q, want it to say %q", tc.name, g.Measured, tc.says)
		}
	}
}

func TestOldResultsRenderWithCacheGoalsNotMeasured(t *testing.T) {
	res := results(map[string]float64{Nginx: 150, Deerd: 200}, nil)
	res.PhaseC = []Feature{{Name: CacheHitFeature, How: "repeat one request", Deerd: "not built: …", Nginx: "no cache configured"}}
	for _, prefix := range []string{hitGoal, coalesceGoal, batchGoal, zipfGoal} {
		if g := cacheGoal(t, res, prefix); g.Met != "not measured" {
			t.Errorf("%s: %s (%s), want not measured", prefix, g.Met, g.Measured)
		}
	}
	if md := res.Markdown(nil); !strings.Contains(md, "| Cache-hit latency | repeat one request | not built: … |") {
		t.Errorf("a saved row without structured results renders as saved:\n%s", md)
	}
}

func TestPhaseCRowsRenderFromTheSavedResults(t *testing.T) {
	res := withCacheResults(results(map[string]float64{Nginx: 150, Deerd: 200}, nil))
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Results // what deerbench --from reads
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	md := back.Markdown(nil)
	for _, want := range []string{
		"| Cache-hit latency |", "L1-hit added 80 µs (IQR 20 µs), p50 320 µs, p99 900 µs; 190/190 answers hit-l1; upstream calls during the hit rounds: 0; 0.80 × nginx's added",
		"no cache: added 100 µs (IQR 30 µs)",
		"1 upstream call(s) for 50 calls; answered 50 × 200; X-Deer-Cache: 49 × coalesced, 1 × miss",
		"50 upstream call(s) for 50 calls",
		"1000/1000 succeeded; 100 upstream calls for 1000 inputs (10.0 × fewer calls; largest 10 inputs)",
		"hit ratio 78.3% (l1 60.0%, l2 13.3%, l3 5.0%), coalesced 0.3%; ideal LRU 80.0%",
		"| deerd | 60.0% | 13.3% | 5.0% | 78.3% | 0.3% | 21.3% | 0.0% | 78.7% | 6400 |",
		"| ideal LRU of 16000 entries | | | | 80.0% | | 20.0% | | 80.0% | 6000 |",
		"| Breaker fast-fail | h | d | n |",
		"Phases A and B send chat completions without `temperature`",
		"| Phase C: identical in-flight calls coalesce into exactly 1 upstream call |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(md, "Cache-hit latency") > strings.Index(md, "Breaker fast-fail") {
		t.Error("Phase C rows must keep their order")
	}
}

func TestPhasesAAndBSendBodiesDeerdDoesNotCache(t *testing.T) {
	var body map[string]any
	if err := json.Unmarshal([]byte(Body), &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["temperature"]; ok {
		t.Errorf("Body %s: a chat with temperature may be cached, and Phases A and B would measure the cache", Body)
	}
	a, b := cacheableChat("a"), cacheableChat("b")
	var c struct {
		Temperature *float64 `json:"temperature"`
	}
	if err := json.Unmarshal([]byte(a), &c); err != nil || c.Temperature == nil || *c.Temperature != 0 {
		t.Errorf("cacheableChat %s: want valid JSON with temperature 0 (%v)", a, err)
	}
	if a == b {
		t.Error("distinct tags must make distinct bodies (distinct cache entries)")
	}
	var e struct{ Input string }
	if err := json.Unmarshal([]byte(embedding(`say "x"`)), &e); err != nil || e.Input != `say "x"` {
		t.Errorf("embedding body: %v %q", err, e.Input)
	}
}

func TestParseCounterSumsLabelSets(t *testing.T) {
	text := "# TYPE deer_cache_hits_total counter\n" +
		"deer_cache_hits_total{tier=\"l1\"} 5\n" +
		"deer_cache_hits_total{tier=\"l2\"} 2\n" +
		"deer_cache_hits_total_other 100\n" +
		"deer_tasks_total 9\n"
	if v, ok := ParseCounter(text, "deer_cache_hits_total"); !ok || v != 7 {
		t.Errorf("got %v %v, want 7", v, ok)
	}
	if v, ok := ParseCounter(text, "deer_tasks_total"); !ok || v != 9 {
		t.Errorf("unlabelled: got %v %v, want 9", v, ok)
	}
	if _, ok := ParseCounter(text, "deer_missing_total"); ok {
		t.Error("a missing counter is not found")
	}
}

// fakeDeerd answers every POST, saying "miss" first and "hit-l1" after.
func fakeDeerd(t *testing.T, delay time.Duration) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		if n.Add(1) == 1 {
			w.Header().Set(CacheHeader, "miss")
		} else {
			w.Header().Set(CacheHeader, "hit-l1")
		}
		w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestBurstAndOpenLoopReadEveryAnswer(t *testing.T) {
	srv, n := fakeDeerd(t, 20*time.Millisecond)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	r := &runner{client: &http.Client{Transport: tr}}

	as := r.burst(context.Background(), 10, srv.URL, "{}", 5*time.Second)
	if got := counts(cachesOf(as)); got != "9 × hit-l1, 1 × miss" || okCount(as) != 10 {
		t.Errorf("burst answers: %s, %d ok", got, okCount(as))
	}
	if n.Load() != 10 {
		t.Errorf("server saw %d requests, want 10", n.Load())
	}

	start := time.Now()
	var urls []string
	as = r.openLoop(context.Background(), 20, 200, 5*time.Second, func(i int) (string, string) {
		urls = append(urls, srv.URL)
		return srv.URL, "{}"
	})
	if elapsed := time.Since(start); elapsed < 95*time.Millisecond {
		t.Errorf("20 requests at 200/s took %s, want about 100 ms of schedule", elapsed)
	}
	if len(urls) != 20 || statusesOf(as)[200] != 20 {
		t.Fatalf("open loop: %d built, statuses %v", len(urls), statusesOf(as))
	}
	for _, l := range latenciesOf(as, nil) {
		if l < 20_000 {
			t.Fatalf("latency %v µs below the server's 20 ms", l)
		}
	}
}

func TestCacheTallyCountsOnlyTheDeerdHost(t *testing.T) {
	deerd, _ := fakeDeerd(t, 0)
	direct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(direct.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	seen := map[string]int{}
	rec := &cacheTally{base: tr, host: strings.TrimPrefix(deerd.URL, "http://"), seen: seen}
	targets := []load.Target{{Method: http.MethodPost, URL: direct.URL, Body: []byte("{}")}, {Method: http.MethodPost, URL: deerd.URL, Body: []byte("{}")}}
	if _, err := load.Rounds(context.Background(), &http.Client{Transport: rec}, targets, 2, 3, 1, load.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := counts(seen); got != "6 × hit-l1, 1 × miss" {
		t.Errorf("deerd answers %s, want 7 (1 warm-up + 2 × 3) and none of direct's", got)
	}
}
