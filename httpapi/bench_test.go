package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/load"
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
			roundMedians = append(roundMedians, load.Quantile(t, 0.5)-load.Quantile(d, 0.5))
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

	b.ReportMetric(load.Quantile(roundMedians, 0.5), "added_us")
	b.ReportMetric(load.Quantile(roundMedians, 0.75)-load.Quantile(roundMedians, 0.25), "added_iqr_us")
	b.ReportMetric(load.Quantile(directs, 0.5), "direct_p50_us")
	b.ReportMetric(load.Quantile(directs, 0.99), "direct_p99_us")
	b.ReportMetric(load.Quantile(throughs, 0.5), "deerd_p50_us")
	b.ReportMetric(load.Quantile(throughs, 0.99), "deerd_p99_us")
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
