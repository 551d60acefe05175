package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"testing"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/sim"
)

// The allocation benchmarks send one request per iteration, sequentially,
// from a real net/http client with keep-alive to a real upstream (deersim
// over loopback), either directly (BenchmarkChatDirect) or through deerd's
// real handler over a real runtime. Client, deerd and deersim share this
// process, so -benchmem's allocs/op of a "through" benchmark counts all
// three; the direct benchmark counts client and deersim alone. deer's own
// share is the difference, which the through benchmarks also report
// (added_allocs/req) by measuring direct calls on the same client in the
// same run. A hop through any Go proxy costs net/http's server and client
// allocations once more: the through benchmarks also measure Go's bare
// reverse proxy (httputil, as make bench's go-proxy target) in front of the
// same deersim, and own_allocs/req is deerd's count above that proxy's.
//
//
//	go test -run '^$' -bench 'Chat|Embeddings' -benchmem ./httpapi/
//
// Background work of the runtime (health checks, metric snapshots) is
// counted too, spread over the iterations; it is a small part over a run
// of a second or more.

// allocBench is a runtime behind its handler, a simulator, and one client.
type allocBench struct {
	b       *testing.B
	simURL  string
	deerURL string
	goURL   string
	client  *http.Client
	buf     []byte
	reader  bytes.Reader
}

func newAllocBench(b *testing.B) *allocBench {
	b.Helper()
	_, simURL := simUpstream(b, sim.DefaultKnobs())
	cfg := simConfig(b, simURL)
	cfg.Monitoring.DetailedLogging = false
	// The wall clock: on the harness's fake clock the limiter's bucket
	// never refills, which would cap b.N at its burst.
	h := start(b, cfg, deer.WithClock(clock.Real{}))
	u, err := url.Parse(simURL)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	ptr := &http.Transport{MaxIdleConnsPerHost: 4}
	proxy.Transport = ptr
	gp := httptest.NewServer(proxy)
	b.Cleanup(gp.Close)
	b.Cleanup(ptr.CloseIdleConnections)
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	b.Cleanup(tr.CloseIdleConnections)
	return &allocBench{b: b, simURL: simURL, deerURL: h.srv.URL, goURL: gp.URL, client: &http.Client{Transport: tr}}
}

// post sends body to url and reads the whole answer, which must be 200
// with the X-Deer-Cache value wantCache ("" for a direct call).
func (a *allocBench) post(url string, body []byte, header, value, wantCache string) {
	a.reader.Reset(body)
	req, err := http.NewRequest(http.MethodPost, url, &a.reader)
	if err != nil {
		a.b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.b.Fatalf("%s: %d", url, resp.StatusCode)
	}
	if got := resp.Header.Get("X-Deer-Cache"); got != wantCache {
		a.b.Fatalf("%s: X-Deer-Cache %q, want %q", url, got, wantCache)
	}
}

// body is prefix, n and suffix in a reused buffer: a body new to the
// cache on every call, built without allocating.
func (a *allocBench) body(prefix string, n int, suffix string) []byte {
	a.buf = append(a.buf[:0], prefix...)
	a.buf = strconv.AppendInt(a.buf, int64(n), 10)
	a.buf = append(a.buf, suffix...)
	return a.buf
}

// mallocs is the process's allocation count so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// shape is one kind of request: its path, its body for call n, a steering
// header, and the X-Deer-Cache its answer through deerd carries.
type shape struct {
	path          string
	prefix        string
	suffix        string
	header, value string
	cache         string
}

var (
	// A chat without temperature: deer does not cache it (no lookup, no
	// store), the plainest miss.
	chatUncacheable = shape{path: "/v1/chat/completions",
		prefix: `{"model":"sim-model","messages":[{"role":"user","content":"hello `, suffix: `"}]}`, cache: "miss"}
	// The same chat marked X-Deer-Cache: bypass.
	chatBypass = shape{path: "/v1/chat/completions",
		prefix: `{"model":"sim-model","messages":[{"role":"user","content":"hello `, suffix: `"}]}`,
		header: "X-Deer-Cache", value: "bypass", cache: "bypass"}
	// A temperature-0 chat new to the cache: L1 missed at admission, L2
	// and L3 looked up, the answer stored in L1 and L3 (bbolt on disk): the
	// realistic miss of a cacheable call.
	chatLookupStore = shape{path: "/v1/chat/completions",
		prefix: `{"model":"sim-model","temperature":0,"messages":[{"role":"user","content":"hello `, suffix: `"}]}`, cache: "miss"}
	// An embedding of an input new to the cache (embeddings are always
	// cacheable; simConfig's upstream does not batch).
	embedLookupStore = shape{path: "/v1/embeddings",
		prefix: `{"model":"sim-embed","input":"hello `, suffix: `"}`, cache: "miss"}
)

// run benchmarks sh through deerd, after measuring the same calls direct
// and through the bare Go proxy for the derived metrics.
func (a *allocBench) run(sh shape) {
	b := a.b
	direct, goproxy, through := a.simURL+sh.path, a.goURL+sh.path, a.deerURL+sh.path
	n := 0
	for ; n < 50; n++ { // warm-up: connections, pools, the runtime's caches
		a.post(direct, a.body(sh.prefix, n, sh.suffix), "", "", "")
		a.post(goproxy, a.body(sh.prefix, n, sh.suffix), "", "", "")
		a.post(through, a.body(sh.prefix, n, sh.suffix), sh.header, sh.value, sh.cache)
	}
	perCall := func(url string) float64 {
		const calls = 500
		m0 := mallocs()
		for i := 0; i < calls; i++ {
			a.post(url, a.body(sh.prefix, n, sh.suffix), "", "", "")
			n++
		}
		return float64(mallocs()-m0) / calls
	}
	directAllocs, goproxyAllocs := perCall(direct), perCall(goproxy)

	b.ReportAllocs()
	b.ResetTimer()
	m0 := mallocs()
	for i := 0; i < b.N; i++ {
		a.post(through, a.body(sh.prefix, n, sh.suffix), sh.header, sh.value, sh.cache)
		n++
	}
	throughAllocs := float64(mallocs()-m0) / float64(b.N)
	b.StopTimer()
	b.ReportMetric(directAllocs, "direct_allocs/req")
	b.ReportMetric(throughAllocs-directAllocs, "added_allocs/req")
	b.ReportMetric(goproxyAllocs, "goproxy_allocs/req")
	b.ReportMetric(throughAllocs-goproxyAllocs, "own_allocs/req")
}

// BenchmarkChatMiss is a chat completion through deerd that the cache does
// not answer: uncacheable (no temperature), bypass (X-Deer-Cache: bypass),
// and lookup-store (temperature 0, new to the cache: looked up in every
// tier, then stored).
func BenchmarkChatMiss(b *testing.B) {
	for _, c := range []struct {
		name string
		sh   shape
	}{{"uncacheable", chatUncacheable}, {"bypass", chatBypass}, {"lookup-store", chatLookupStore}} {
		b.Run(c.name, func(b *testing.B) { newAllocBench(b).run(c.sh) })
	}
}

// BenchmarkEmbeddingsMiss is an embedding new to the cache through deerd.
func BenchmarkEmbeddingsMiss(b *testing.B) { newAllocBench(b).run(embedLookupStore) }

// BenchmarkChatDirect is the client calling deersim directly, with the
// uncacheable chat's body: the allocations that are not deer's.
func BenchmarkChatDirect(b *testing.B) {
	a := newAllocBench(b)
	url := a.simURL + chatUncacheable.path
	for n := 0; n < 50; n++ {
		a.post(url, a.body(chatUncacheable.prefix, n, chatUncacheable.suffix), "", "", "")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.post(url, a.body(chatUncacheable.prefix, i, chatUncacheable.suffix), "", "", "")
	}
}
