package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/sim"
)

// BenchmarkAddedLatency measures, sequentially, what one hop through deerd
// adds to a chat completion compared with calling the simulator directly,
// both over loopback HTTP with keep-alive. Each iteration is one direct call
// and one call through deerd; every 25 iterations form a round. Reported:
// the median over rounds of each round's median difference (added_us), its
// spread, and p50/p99 of each side. Run with -benchtime=175x for 7 rounds.
func BenchmarkAddedLatency(b *testing.B) {
	_, simURL := simUpstream(b, sim.DefaultKnobs())
	cfg := simConfig(b, simURL)
	cfg.Monitoring.DetailedLogging = false
	h := start(b, cfg)
	body := []byte(`{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`)
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	call := func(url string) time.Duration {
		start := time.Now()
		resp, err := c.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", url, resp.StatusCode)
		}
		return time.Since(start)
	}
	direct, through := simURL+"/v1/chat/completions", h.srv.URL+"/v1/chat/completions"
	for i := 0; i < 15; i++ { // warm-up: connections, pools, caches of the runtime
		call(direct)
		call(through)
	}

	const round = 25
	var directs, throughs, roundMedians []float64
	var d, t []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d = append(d, us(call(direct)))
		t = append(t, us(call(through)))
		if len(d) == round {
			roundMedians = append(roundMedians, median(t)-median(d))
			directs, throughs = append(directs, d...), append(throughs, t...)
			d, t = nil, nil
		}
	}
	b.StopTimer()
	if len(roundMedians) == 0 {
		if b.N > 1 {
			b.Logf("fewer than %d iterations: no round to report (use -benchtime=175x)", round)
		}
		return
	}
	slices.Sort(roundMedians)
	b.ReportMetric(median(roundMedians), "added_us")
	b.ReportMetric(quantile(roundMedians, 0.75)-quantile(roundMedians, 0.25), "added_iqr_us")
	b.ReportMetric(quantile(directs, 0.5), "direct_p50_us")
	b.ReportMetric(quantile(directs, 0.99), "direct_p99_us")
	b.ReportMetric(quantile(throughs, 0.5), "deerd_p50_us")
	b.ReportMetric(quantile(throughs, 0.99), "deerd_p99_us")
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile is the nearest-rank quantile of xs (not modified).
func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}
