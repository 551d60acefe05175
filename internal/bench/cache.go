package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/load"
)

// The Phase C rows measured here: deerd's cache, coalescing and embedding
// batching (SPEC §5), each beside what nginx does with the same traffic.
const (
	CacheHitFeature = "Cache-hit latency"
	CoalesceFeature = "Coalescing of identical in-flight calls"
	BatchFeature    = "Embedding calls saved by batching"
	ZipfFeature     = "Cache hit ratio under Zipf-distributed requests"
)

// CacheHeader is the response header deerd says where an answer came from
// in (hit-l1, hit-l2, hit-l3, miss, bypass, refresh, coalesced).
const CacheHeader = "X-Deer-Cache"

// noHeader counts answers without an X-Deer-Cache header (nginx's, or a
// deerd that does not set it).
const noHeader = "none"

// ZipfGoalShare is the bench's bar for the Zipf row: deerd's cache must
// spare at least this share of the upstream calls an ideal LRU of the same
// total size spares on the same sequence.
const ZipfGoalShare = 0.95

const (
	chatPath  = "/v1/chat/completions"
	embedPath = "/v1/embeddings"
)

// cacheableChat is a chat completion deerd caches ("temperature": 0); tag
// makes it a distinct body, hence a distinct cache entry.
func cacheableChat(tag string) string {
	return fmt.Sprintf(`{"model":"sim-model","temperature":0,"messages":[{"role":"user","content":"Say hello. (%s)"}]}`, tag)
}

func embedding(input string) string {
	return fmt.Sprintf(`{"model":"sim-model","input":%q}`, input)
}

// CacheHit is the cache-hit check: rounds of one temperature-0 chat body,
// as in Phase A, direct, through nginx and through deerd answering from L1.
type CacheHit struct {
	Body string `json:"body"`
	// Targets name Rounds' targets, in order: direct first.
	Targets []string           `json:"targets"`
	Rounds  *load.RoundsResult `json:"rounds,omitempty"`
	// FillCalls is the calls to deerd before the rounds: the first filled
	// the cache, the last was the first to say hit-l1 (the store may land
	// just after its answer).
	FillCalls int `json:"fill_calls"`
	// Answers counts deerd's X-Deer-Cache values over the warm-up and the
	// rounds.
	Answers map[string]int `json:"answers"`
	// UpstreamCalls is deersim's chat calls during the warm-up and the
	// rounds beyond the direct and nginx ones: deerd's.
	UpstreamCalls int64  `json:"upstream_calls"`
	Error         string `json:"error,omitempty"`
}

// added is target's added latency in the rounds (median of round
// differences from direct) and its IQR.
func (c *CacheHit) added(target string) (median, iqr float64, ok bool) {
	if c == nil || c.Rounds == nil {
		return 0, 0, false
	}
	for i, name := range c.Targets {
		if name == target && i > 0 && i-1 < len(c.Rounds.Diffs) {
			d := c.Rounds.Diffs[i-1]
			return d.MedianUS, d.IQRUS, true
		}
	}
	return 0, 0, false
}

func (c *CacheHit) percentiles(target string) (p50, p99 float64) {
	i := slices.Index(c.Targets, target)
	if c.Rounds == nil || i < 0 || i >= len(c.Rounds.Targets) {
		return 0, 0
	}
	return c.Rounds.Targets[i].P50US, c.Rounds.Targets[i].P99US
}

// allL1 reports whether every measured deerd answer said hit-l1 and deerd
// made no upstream call meanwhile.
func (c *CacheHit) allL1() bool {
	n := total(c.Answers)
	return c.Error == "" && n > 0 && c.Answers["hit-l1"] == n && c.UpstreamCalls == 0
}

func (c *CacheHit) feature() Feature {
	f := Feature{Name: CacheHitFeature, Nginx: "no cache configured"}
	calls := 0
	if c.Rounds != nil {
		calls = c.Rounds.Warmup + c.Rounds.Rounds*c.Rounds.PerRound
		f.How = fmt.Sprintf("one temperature-0 chat body; %d call(s) to deerd fill its cache, then %d warm-up and %d rounds of %d calls as in Phase A, %s taking turns; added = median over rounds of (target − direct); X-Deer-Cache of every deerd answer; upstream calls from deersim's /_stats",
			c.FillCalls, c.Rounds.Warmup, c.Rounds.Rounds, c.Rounds.PerRound, strings.Join(c.Targets, ", "))
	} else {
		f.How = "one temperature-0 chat body repeated in rounds as in Phase A, after a call that fills deerd's cache"
	}
	if c.Error != "" {
		f.Deerd = "not measured: " + c.Error
		return f
	}
	m, iqr, _ := c.added(Deerd)
	p50, p99 := c.percentiles(Deerd)
	f.Deerd = fmt.Sprintf("L1-hit added %s (IQR %s), p50 %s, p99 %s; %d/%d answers hit-l1", us(m), us(iqr), us(p50), us(p99),
		c.Answers["hit-l1"], calls)
	if n := total(c.Answers); n != c.Answers["hit-l1"] {
		f.Deerd += " (" + counts(c.Answers) + ")"
	}
	f.Deerd += fmt.Sprintf("; upstream calls during the hit rounds: %d", c.UpstreamCalls)
	if nm, niqr, ok := c.added(Nginx); ok {
		p50, p99 := c.percentiles(Nginx)
		f.Nginx = fmt.Sprintf("no cache: added %s (IQR %s), p50 %s, p99 %s, every call upstream", us(nm), us(niqr), us(p50), us(p99))
		if nm > 0 {
			f.Deerd += fmt.Sprintf("; %.2f × nginx's added", m/nm)
		}
	}
	return f
}

// Burst is one target's answers to identical calls sent at once.
type Burst struct {
	Calls         int            `json:"calls"`
	UpstreamCalls int64          `json:"upstream_calls"`
	Statuses      map[int]int    `json:"statuses"`
	Answers       map[string]int `json:"answers"` // by X-Deer-Cache
	P50US         float64        `json:"p50_us"`
	MaxUS         float64        `json:"max_us"`
}

// Coalescing is the coalescing check: Calls identical temperature-0 chats
// at once while deersim takes SimLatency to answer.
type Coalescing struct {
	Calls      int           `json:"calls"`
	SimLatency time.Duration `json:"sim_latency"`
	Deerd      *Burst        `json:"deerd,omitempty"`
	Nginx      *Burst        `json:"nginx,omitempty"`
}

func (c *Coalescing) feature() Feature {
	f := Feature{Name: CoalesceFeature,
		How: fmt.Sprintf("deersim latency %s; %d identical temperature-0 chats (a body new to the cache) sent at once; upstream calls from deersim's /_stats, answers by X-Deer-Cache",
			c.SimLatency, c.Calls)}
	line := func(b *Burst, cache bool) string {
		if b == nil {
			return ""
		}
		s := fmt.Sprintf("%d upstream call(s) for %d calls; answered %s", b.UpstreamCalls, b.Calls, statusCounts(b.Statuses))
		if cache {
			s += "; X-Deer-Cache: " + counts(b.Answers)
		}
		return s + fmt.Sprintf("; p50 %s, slowest %s", us(b.P50US), us(b.MaxUS))
	}
	f.Deerd, f.Nginx = line(c.Deerd, true), line(c.Nginx, false)
	return f
}

// EmbedRun is one target's answers to the batching check.
type EmbedRun struct {
	Sent     int            `json:"sent"`
	OK       int            `json:"ok"`
	Statuses map[int]int    `json:"statuses"`
	Answers  map[string]int `json:"answers"` // by X-Deer-Cache
	// UpstreamCalls and Inputs are deersim's embedding calls and the
	// inputs they carried; MaxInputs the most in one call.
	UpstreamCalls int64 `json:"upstream_calls"`
	Inputs        int64 `json:"inputs"`
	MaxInputs     int   `json:"max_inputs"`
	// AddedP50US and AddedP99US are the answers' latency (from each
	// request's scheduled send) minus deersim's latency.
	AddedP50US float64 `json:"added_p50_us"`
	AddedP99US float64 `json:"added_p99_us"`
}

// Batching is the embedding-batching check: Requests single-input
// embedding calls, each input distinct, at Rate on an open-loop schedule.
type Batching struct {
	Requests   int           `json:"requests"`
	Rate       float64       `json:"rate"`
	SimLatency time.Duration `json:"sim_latency"`
	// BatchSize and BatchTimeout are deerd's batch_processing settings
	// during the run (from GET /config).
	BatchSize    int       `json:"batch_size"`
	BatchTimeout float64   `json:"batch_timeout"` // seconds
	Deerd        *EmbedRun `json:"deerd,omitempty"`
	Nginx        *EmbedRun `json:"nginx,omitempty"`
}

func (b *Batching) feature() Feature {
	f := Feature{Name: BatchFeature,
		How: fmt.Sprintf("%d single-input /v1/embeddings calls, each input distinct, at %g req/s open loop; deersim latency %s; upstream calls and inputs from deersim's /_stats; added = latency from the scheduled send − %s; deerd batch_size %d, batch_timeout %gs",
			b.Requests, b.Rate, b.SimLatency, b.SimLatency, b.BatchSize, b.BatchTimeout)}
	line := func(e *EmbedRun) string {
		if e == nil {
			return ""
		}
		return fmt.Sprintf("%d/%d succeeded; %d upstream calls for %d inputs (%s fewer calls; largest %d inputs); added p50 %s, p99 %s",
			e.OK, e.Sent, e.UpstreamCalls, e.Inputs, ratio(e.Inputs, e.UpstreamCalls), e.MaxInputs, us(e.AddedP50US), us(e.AddedP99US))
	}
	f.Deerd, f.Nginx = line(b.Deerd), line(b.Nginx)
	if b.Deerd != nil && total(b.Deerd.Answers) != b.Deerd.Answers[noHeader] {
		f.Deerd += "; X-Deer-Cache: " + counts(b.Deerd.Answers)
	}
	return f
}

// ZipfRun is the hit-ratio check: Requests temperature-0 chats whose
// bodies are drawn Zipf(S) over Keys distinct ones, at Rate through deerd,
// beside an ideal LRU of Capacity entries on the same sequence.
type ZipfRun struct {
	Keys     int     `json:"keys"`
	Requests int     `json:"requests"`
	S        float64 `json:"s"`
	Seed     uint64  `json:"seed"`
	Rate     float64 `json:"rate"`
	// Distinct is the keys the sequence holds: first sightings, which no
	// cache can answer.
	Distinct int `json:"distinct"`
	// Capacity is deerd's l1_size + l2_size + l3_size; IdealHits what an
	// LRU of that many entries hits on the sequence.
	Capacity      int            `json:"capacity"`
	IdealHits     int            `json:"ideal_hits"`
	Statuses      map[int]int    `json:"statuses"`
	Answers       map[string]int `json:"answers"` // by X-Deer-Cache
	UpstreamCalls int64          `json:"upstream_calls"`
	// HitP50US and MissP50US are the median latency of answers from the
	// cache (any tier) and of misses.
	HitP50US  float64 `json:"hit_p50_us"`
	MissP50US float64 `json:"miss_p50_us"`
}

func (z *ZipfRun) hits() int {
	return z.Answers["hit-l1"] + z.Answers["hit-l2"] + z.Answers["hit-l3"]
}

// spared is the share of requests answered without an upstream call of
// their own: cache hits and coalesced answers.
func (z *ZipfRun) spared() float64 {
	return float64(z.hits()+z.Answers["coalesced"]) / float64(max(z.Requests, 1))
}

func (z *ZipfRun) ideal() float64 { return float64(z.IdealHits) / float64(max(z.Requests, 1)) }

func (z *ZipfRun) feature() Feature {
	f := Feature{Name: ZipfFeature,
		How: fmt.Sprintf("%d requests drawn Zipf(s=%g) over %d distinct temperature-0 chats (%d of them drawn; seed %d), %g req/s through deerd with the default cache sizes; answers by X-Deer-Cache; ideal = an LRU of %d entries (l1+l2+l3) replayed on the same sequence",
			z.Requests, z.S, z.Keys, z.Distinct, z.Seed, z.Rate, z.Capacity),
		Nginx: "no cache configured: every request is an upstream call"}
	f.Deerd = fmt.Sprintf("hit ratio %s (l1 %s, l2 %s, l3 %s), coalesced %s; ideal LRU %s; %d upstream calls for %d requests (ideal %d); hit p50 %s, miss p50 %s",
		pct(z.hits(), z.Requests), pct(z.Answers["hit-l1"], z.Requests), pct(z.Answers["hit-l2"], z.Requests), pct(z.Answers["hit-l3"], z.Requests),
		pct(z.Answers["coalesced"], z.Requests), pct(z.IdealHits, z.Requests), z.UpstreamCalls, z.Requests, z.Requests-z.IdealHits,
		us(z.HitP50US), us(z.MissP50US))
	if ok := z.Statuses[200]; ok != z.Requests {
		f.Deerd += "; answered " + statusCounts(z.Statuses)
	}
	return f
}

// markdown writes the per-tier split of the Zipf run beside the ideal LRU.
func (z *ZipfRun) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "Cache hit ratio by tier, %d requests drawn Zipf(s=%g) over %d bodies (%d distinct drawn: no cache can answer a first sighting):\n\n",
		z.Requests, z.S, z.Keys, z.Distinct)
	b.WriteString("| | hit-l1 | hit-l2 | hit-l3 | all hits | coalesced | miss | other | no upstream call of its own | upstream calls |\n|---|---|---|---|---|---|---|---|---|---|\n")
	other := z.Requests - z.hits() - z.Answers["coalesced"] - z.Answers["miss"]
	fmt.Fprintf(b, "| deerd | %s | %s | %s | %s | %s | %s | %s | %.1f%% | %d |\n",
		pct(z.Answers["hit-l1"], z.Requests), pct(z.Answers["hit-l2"], z.Requests), pct(z.Answers["hit-l3"], z.Requests), pct(z.hits(), z.Requests),
		pct(z.Answers["coalesced"], z.Requests), pct(z.Answers["miss"], z.Requests), pct(other, z.Requests), z.spared()*100, z.UpstreamCalls)
	fmt.Fprintf(b, "| ideal LRU of %d entries | | | | %s | | %s | | %s | %d |\n",
		z.Capacity, pct(z.IdealHits, z.Requests), pct(z.Requests-z.IdealHits, z.Requests), pct(z.IdealHits, z.Requests), z.Requests-z.IdealHits)
	if other > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(z.Answers)) {
			if !strings.HasPrefix(k, "hit-") && k != "coalesced" && k != "miss" {
				parts = append(parts, fmt.Sprintf("%d × %s", z.Answers[k], k))
			}
		}
		if n := z.Requests - total(z.Answers); n > 0 {
			parts = append(parts, fmt.Sprintf("%d without an answer", n))
		}
		fmt.Fprintf(b, "\nOther: %s.\n", strings.Join(parts, ", "))
	}
}

// phaseCRows is the Phase C table: the rows as measured, those with
// structured results rendered afresh from them (so that `deerbench --from`
// picks up a changed wording).
func (res *Results) phaseCRows() []Feature {
	rows := slices.Clone(res.PhaseC)
	for i, f := range rows {
		switch {
		case f.Name == CacheHitFeature && res.CacheHit != nil:
			rows[i] = res.CacheHit.feature()
		case f.Name == CoalesceFeature && res.Coalescing != nil:
			rows[i] = res.Coalescing.feature()
		case f.Name == BatchFeature && res.Batching != nil:
			rows[i] = res.Batching.feature()
		case f.Name == ZipfFeature && res.Zipf != nil:
			rows[i] = res.Zipf.feature()
		}
	}
	return rows
}

// cacheGoals judges the cache, coalescing and batching goals.
func (res *Results) cacheGoals() []Goal {
	var goals []Goal

	g := Goal{Goal: "Phase C: deerd's added latency on an L1 hit ≤ nginx's added latency (same rounds)", Met: "not measured"}
	if c := res.CacheHit; c != nil && c.Error != "" {
		g.Measured, g.Met = "the rounds failed: "+c.Error, "missed"
	} else if d, _, okD := c.added(Deerd); okD {
		n, _, okN := c.added(Nginx)
		hits := fmt.Sprintf("%d/%d answers hit-l1; upstream calls during the hit rounds: %d", c.Answers["hit-l1"], total(c.Answers), c.UpstreamCalls)
		switch {
		case !c.allL1():
			g.Measured, g.Met = fmt.Sprintf("not all answers came from L1 (%s): %s", counts(c.Answers), hits), "missed"
		case okN:
			g.Measured = fmt.Sprintf("deerd L1 hit %s, nginx %s: %.2f ×; %s", us(d), us(n), d/max(n, 1e-9), hits)
			g.Met = verdict(d <= n)
		default:
			g.Measured = fmt.Sprintf("deerd L1 hit %s; nginx not run; %s", us(d), hits)
		}
	}
	goals = append(goals, g)

	g = Goal{Goal: "Phase C: identical in-flight calls coalesce into exactly 1 upstream call", Met: "not measured"}
	if c := res.Coalescing; c != nil && c.Deerd != nil {
		b := c.Deerd
		g.Measured = fmt.Sprintf("%d calls at once: %d upstream call(s); X-Deer-Cache %s; answered %s", b.Calls, b.UpstreamCalls, counts(b.Answers), statusCounts(b.Statuses))
		g.Met = verdict(b.UpstreamCalls == 1 && b.Statuses[200] == b.Calls)
	}
	goals = append(goals, g)

	g = Goal{Goal: "Phase C: embedding batching: ≥ 10 × fewer upstream calls than inputs, p50 added ≤ batch_timeout", Met: "not measured"}
	if b := res.Batching; b != nil && b.Deerd != nil {
		e := b.Deerd
		timeoutUS := b.BatchTimeout * 1e6
		g.Measured = fmt.Sprintf("%d upstream calls for %d inputs (%s fewer); p50 added %s, p99 %s vs batch_timeout %gs; %d/%d succeeded",
			e.UpstreamCalls, e.Inputs, ratio(e.Inputs, e.UpstreamCalls), us(e.AddedP50US), us(e.AddedP99US), b.BatchTimeout, e.OK, e.Sent)
		g.Met = verdict(e.OK == e.Sent && e.Inputs > 0 && e.UpstreamCalls*10 <= e.Inputs && e.AddedP50US <= timeoutUS)
	}
	goals = append(goals, g)

	g = Goal{Goal: fmt.Sprintf("Phase C: under Zipf(1.0) requests, deerd spares ≥ %.0f%% of the upstream calls an ideal LRU of l1+l2+l3 entries spares", ZipfGoalShare*100),
		Met: "not measured"}
	if z := res.Zipf; z != nil && z.Requests > 0 {
		g.Measured = fmt.Sprintf("hits %s + coalesced %s = %s of requests; ideal %s", pct(z.hits(), z.Requests), pct(z.Answers["coalesced"], z.Requests),
			fmt.Sprintf("%.1f%%", z.spared()*100), pct(z.IdealHits, z.Requests))
		if z.ideal() > 0 {
			g.Measured += fmt.Sprintf(": %.1f%% of ideal", z.spared()/z.ideal()*100)
		}
		g.Met = verdict(z.Statuses[200] == z.Requests && z.spared() >= ZipfGoalShare*z.ideal())
	}
	return append(goals, g)
}

// --- measuring ---

// deerdSettings are the settings Phase C reports, read from deerd's GET
// /config; the built-in defaults when it does not answer.
type deerdSettings struct {
	BatchSize    int
	BatchTimeout float64
	CacheEntries int // l1 + l2 + l3
}

func (r *runner) deerdSettings(ctx context.Context, t target) deerdSettings {
	def := conf.Default()
	s := deerdSettings{BatchSize: def.BatchProcessing.BatchSize, BatchTimeout: def.BatchProcessing.BatchTimeout,
		CacheEntries: def.Cache.L1Size + def.Cache.L2Size + def.Cache.L3Size}
	b, err := r.get(ctx, "http://"+t.proc.Addr+"/config", "")
	var got struct {
		Configuration struct {
			BatchProcessing conf.BatchProcessing `json:"batch_processing"`
			Cache           conf.Cache           `json:"cache"`
		} `json:"configuration"`
	}
	if err == nil {
		err = json.Unmarshal(b, &got)
	}
	if err != nil {
		r.logf("reading deerd's /config: %v; reporting the default batch and cache sizes", err)
		return s
	}
	c := got.Configuration
	if c.BatchProcessing.BatchSize > 0 {
		s.BatchSize, s.BatchTimeout = c.BatchProcessing.BatchSize, c.BatchProcessing.BatchTimeout
	}
	if n := c.Cache.L1Size + c.Cache.L2Size + c.Cache.L3Size; n > 0 {
		s.CacheEntries = n
	}
	return s
}

// cacheChecks runs the cache, coalescing and batching rows (each left out
// when its plan count is 0) and appends them to Phase C. They run before
// the resilience rows: those leave deerd's breaker open and its limiter
// slowed. The Zipf run comes before the batching run, whose embeddings
// (cacheable too) would otherwise fill L1 ahead of it.
func (r *runner) cacheChecks(ctx context.Context) error {
	d, ok := r.target(Deerd)
	if !ok {
		return nil
	}
	settings := r.deerdSettings(ctx, d)
	if r.plan.Rounds > 0 && r.plan.PerRound > 0 {
		r.res.CacheHit = r.cacheHit(ctx, d)
		r.res.PhaseC = append(r.res.PhaseC, r.res.CacheHit.feature())
	}
	if r.plan.CoalesceCalls > 0 {
		c, err := r.coalescing(ctx)
		if err != nil {
			return err
		}
		r.res.Coalescing = c
		r.res.PhaseC = append(r.res.PhaseC, c.feature())
	}
	if r.plan.ZipfRequests > 0 && r.plan.ZipfKeys > 0 {
		z, err := r.zipf(ctx, d, settings)
		if err != nil {
			return err
		}
		r.res.Zipf = z
		r.res.PhaseC = append(r.res.PhaseC, z.feature())
	}
	if r.plan.EmbedRequests > 0 {
		b, err := r.batching(ctx, settings)
		if err != nil {
			return err
		}
		r.res.Batching = b
		r.res.PhaseC = append(r.res.PhaseC, b.feature())
	}
	return nil
}

// cacheHit fills deerd's cache with one body, then runs Phase A's rounds
// (load.Rounds, in process, so that every deerd answer's X-Deer-Cache is
// read) over direct, nginx and deerd with that body. The simulator answers
// at once, as in Phase A.
func (r *runner) cacheHit(ctx context.Context, d target) *CacheHit {
	r.logf("phase C: cache-hit latency")
	c := &CacheHit{Body: cacheableChat("cache-hit " + r.nonce), Answers: map[string]int{}}
	const maxFill = 50
	last := ""
	for c.FillCalls < maxFill {
		a := r.send(ctx, d.url, c.Body, 10*time.Second, time.Now())
		c.FillCalls++
		if last = a.cache; last == "hit-l1" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last != "hit-l1" {
		r.logf("no deerd answer said hit-l1 in %d calls (the last said %q); measuring anyway", maxFill, last)
	}

	var targets []load.Target
	for _, name := range []string{Direct, Nginx, Deerd} {
		if t, ok := r.target(name); ok {
			c.Targets = append(c.Targets, name)
			targets = append(targets, load.Target{Method: http.MethodPost, URL: t.url, Body: []byte(c.Body)})
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	u, err := url.Parse(d.url)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	rec := &cacheTally{base: tr, host: u.Host, seen: c.Answers}
	client := &http.Client{Transport: rec, Timeout: 60 * time.Second}
	if _, err := r.simStats(ctx, true); err != nil {
		c.Error = err.Error()
		return c
	}
	p := r.plan
	rounds, err := load.Rounds(ctx, client, targets, p.Rounds, p.PerRound, p.WarmupRequests, load.Options{Timeout: 10 * time.Second})
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Rounds = &rounds
	st, err := r.simStats(ctx, false)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	perTarget := int64(p.WarmupRequests + p.Rounds*p.PerRound)
	c.UpstreamCalls = st.Requests[chatPath] - perTarget*int64(len(targets)-1) // all but deerd call deersim each time
	return c
}

// cacheTally is a RoundTripper that counts the X-Deer-Cache values of the
// answers from host.
type cacheTally struct {
	base http.RoundTripper
	host string
	mu   sync.Mutex
	seen map[string]int
}

func (c *cacheTally) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && req.URL.Host == c.host {
		v := cacheLabel(resp.Header.Get(CacheHeader))
		c.mu.Lock()
		c.seen[v]++
		c.mu.Unlock()
	}
	return resp, err
}

// coalescing sends CoalesceCalls identical cacheable chats at once to nginx
// and to deerd, a body of its own to each, while the simulator takes
// CoalesceLatency to answer.
func (r *runner) coalescing(ctx context.Context) (*Coalescing, error) {
	p := r.plan
	r.logf("phase C: coalescing (%d identical calls at once)", p.CoalesceCalls)
	c := &Coalescing{Calls: p.CoalesceCalls, SimLatency: p.CoalesceLatency}
	if err := r.control(ctx, fmt.Sprintf(`{"latency": %q}`, p.CoalesceLatency)); err != nil {
		return nil, err
	}
	for _, t := range r.proxies() {
		if _, err := r.simStats(ctx, true); err != nil {
			return nil, err
		}
		as := r.burst(ctx, p.CoalesceCalls, t.url, cacheableChat("coalesce "+t.name+" "+r.nonce), 10*time.Second+p.CoalesceLatency)
		st, err := r.simStats(ctx, false)
		if err != nil {
			return nil, err
		}
		b := &Burst{Calls: p.CoalesceCalls, UpstreamCalls: st.Requests[chatPath], Statuses: statusesOf(as), Answers: cachesOf(as),
			P50US: load.Quantile(latenciesOf(as, nil), 0.5), MaxUS: load.Quantile(latenciesOf(as, nil), 1)}
		if t.name == Deerd {
			c.Deerd = b
		} else {
			c.Nginx = b
		}
	}
	return c, r.control(ctx, `{"latency": "0s"}`)
}

// batching sends EmbedRequests single-input embedding calls, each input
// its own, at EmbedRate to nginx and to deerd while the simulator takes
// EmbedLatency to answer.
func (r *runner) batching(ctx context.Context, s deerdSettings) (*Batching, error) {
	p := r.plan
	r.logf("phase C: embedding batching (%d calls at %g req/s)", p.EmbedRequests, p.EmbedRate)
	b := &Batching{Requests: p.EmbedRequests, Rate: p.EmbedRate, SimLatency: p.EmbedLatency,
		BatchSize: s.BatchSize, BatchTimeout: s.BatchTimeout}
	if err := r.control(ctx, fmt.Sprintf(`{"latency": %q}`, p.EmbedLatency)); err != nil {
		return nil, err
	}
	// An answer may wait a whole batch_timeout, then the upstream call.
	timeout := 10*time.Second + time.Duration(2*s.BatchTimeout*float64(time.Second)) + p.EmbedLatency
	for _, t := range r.proxies() {
		if _, err := r.simStats(ctx, true); err != nil {
			return nil, err
		}
		u := t.path(embedPath)
		as := r.openLoop(ctx, p.EmbedRequests, p.EmbedRate, timeout, func(i int) (string, string) {
			return u, embedding(fmt.Sprintf("embed %s %s %d", t.name, r.nonce, i))
		})
		st, err := r.simStats(ctx, false)
		if err != nil {
			return nil, err
		}
		e := &EmbedRun{Sent: len(as), Statuses: statusesOf(as), Answers: cachesOf(as),
			UpstreamCalls: st.Requests[embedPath], Inputs: st.EmbeddingInputs}
		e.OK = okCount(as)
		if len(st.EmbeddingInputCounts) > 0 {
			e.MaxInputs = slices.Max(st.EmbeddingInputCounts)
		}
		lat := latenciesOf(as, func(a answer) bool { return a.code >= 200 && a.code < 300 })
		sim := float64(p.EmbedLatency.Microseconds())
		e.AddedP50US, e.AddedP99US = load.Quantile(lat, 0.5)-sim, load.Quantile(lat, 0.99)-sim
		if len(lat) == 0 {
			e.AddedP50US, e.AddedP99US = 0, 0
		}
		if t.name == Deerd {
			b.Deerd = e
		} else {
			b.Nginx = e
		}
	}
	return b, r.control(ctx, `{"latency": "0s"}`)
}

// zipf sends ZipfRequests cacheable chats whose bodies follow the Zipf
// sequence to deerd at ZipfRate, the simulator answering at once, and
// replays the same sequence through an ideal LRU.
func (r *runner) zipf(ctx context.Context, d target, s deerdSettings) (*ZipfRun, error) {
	p := r.plan
	r.logf("phase C: Zipf hit ratio (%d requests over %d bodies at %g req/s)", p.ZipfRequests, p.ZipfKeys, p.ZipfRate)
	seq := ZipfSequence(p.ZipfKeys, p.ZipfRequests, p.ZipfS, p.ZipfSeed)
	z := &ZipfRun{Keys: p.ZipfKeys, Requests: p.ZipfRequests, S: p.ZipfS, Seed: p.ZipfSeed, Rate: p.ZipfRate,
		Distinct: distinctCount(seq), Capacity: s.CacheEntries, IdealHits: LRUHits(seq, s.CacheEntries)}
	if _, err := r.simStats(ctx, true); err != nil {
		return nil, err
	}
	as := r.openLoop(ctx, p.ZipfRequests, p.ZipfRate, 10*time.Second, func(i int) (string, string) {
		return d.url, cacheableChat(fmt.Sprintf("zipf %s %d", r.nonce, seq[i]))
	})
	st, err := r.simStats(ctx, false)
	if err != nil {
		return nil, err
	}
	z.Statuses, z.Answers, z.UpstreamCalls = statusesOf(as), cachesOf(as), st.Requests[chatPath]
	z.HitP50US = load.Quantile(latenciesOf(as, func(a answer) bool { return strings.HasPrefix(a.cache, "hit-") }), 0.5)
	z.MissP50US = load.Quantile(latenciesOf(as, func(a answer) bool { return a.cache == "miss" }), 0.5)
	return z, nil
}

// proxies are nginx and deerd, those running, in that order.
func (r *runner) proxies() []target {
	var ts []target
	for _, name := range []string{Nginx, Deerd} {
		if t, ok := r.target(name); ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// path is the URL of another API path on t.
func (t target) path(p string) string { return strings.TrimSuffix(t.url, chatPath) + p }

// answer is one response of a Phase C batch.
type answer struct {
	code  int           // 0: no answer
	cache string        // X-Deer-Cache, noHeader when absent
	d     time.Duration // from the scheduled send to the end of the body
}

// send posts body to url and reads the answer; d counts from since (the
// request's scheduled send).
func (r *runner) send(ctx context.Context, url, body string, timeout time.Duration, since time.Time) answer {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return answer{cache: noHeader}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return answer{cache: noHeader, d: time.Since(since)}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{code: resp.StatusCode, cache: cacheLabel(resp.Header.Get(CacheHeader)), d: time.Since(since)}
}

// burst sends n identical requests at once (each on its own goroutine,
// released together) and waits for every answer.
func (r *runner) burst(ctx context.Context, n int, url, body string, timeout time.Duration) []answer {
	out := make([]answer, n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			<-release
			out[i] = r.send(ctx, url, body, timeout, time.Now())
		})
	}
	close(release)
	wg.Wait()
	return out
}

// openLoop sends n requests at rate on an open-loop schedule, request i
// being mk(i), and waits for every answer. Latency counts from each
// request's scheduled send, so a sender that falls behind shows in the
// numbers (no coordinated omission). Requests not sent because ctx ended
// have code 0.
func (r *runner) openLoop(ctx context.Context, n int, rate float64, timeout time.Duration, mk func(i int) (url, body string)) []answer {
	out := make([]answer, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range out {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(due))
		if ctx.Err() != nil {
			break
		}
		url, body := mk(i)
		wg.Go(func() { out[i] = r.send(ctx, url, body, timeout, due) })
	}
	wg.Wait()
	return out
}

func cacheLabel(v string) string {
	if v == "" {
		return noHeader
	}
	return v
}

func statusesOf(as []answer) map[int]int {
	m := map[int]int{}
	for _, a := range as {
		m[a.code]++
	}
	return m
}

func cachesOf(as []answer) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		if a.code != 0 {
			m[a.cache]++
		}
	}
	return m
}

func okCount(as []answer) int {
	n := 0
	for _, a := range as {
		if a.code >= 200 && a.code < 300 {
			n++
		}
	}
	return n
}

// latenciesOf is the latency in µs of the answers keep selects (nil: all
// answered ones).
func latenciesOf(as []answer, keep func(answer) bool) []float64 {
	var xs []float64
	for _, a := range as {
		if a.code != 0 && (keep == nil || keep(a)) {
			xs = append(xs, float64(a.d.Nanoseconds())/1e3)
		}
	}
	return xs
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// counts renders a tally as "49 × coalesced, 1 × miss", largest first.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(keys, func(a, b string) int { return m[b] - m[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d × %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func statusCounts(m map[int]int) string {
	s := map[string]int{}
	for code, n := range m {
		label := fmt.Sprint(code)
		if code == 0 {
			label = "no answer"
		}
		s[label] += n
	}
	return counts(s)
}

func pct(n, of int) string { return fmt.Sprintf("%.1f%%", float64(n)/float64(max(of, 1))*100) }

// ratio renders a/b as "10.0 ×"; "—" when b is 0.
func ratio(a, b int64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f ×", float64(a)/float64(b))
}
