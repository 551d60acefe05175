package load_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/load"
	"github.com/deer-runtime/deer/internal/sim"
)

// startSim serves a simulator over loopback for the test's lifetime.
func startSim(t *testing.T, k sim.Knobs) (*sim.Simulator, string) {
	t.Helper()
	s := sim.New(k, sim.WithSeed(1))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close) // runs first, so hung requests do not hold srv.Close up
	return s, srv.URL
}

func knobs(f func(k *sim.Knobs)) sim.Knobs {
	k := sim.DefaultKnobs()
	f(&k)
	return k
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func chat(url string) load.Target {
	return load.Target{
		Method: http.MethodPost, URL: url + "/v1/chat/completions",
		Body: []byte(`{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`),
	}
}

func TestConstantSendsTheScheduleAndCountsStatuses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		errorRate float64
		code      string
		success   float64
	}{
		{"ok", 0, "200", 100},
		{"errors", 1, "500", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, url := startSim(t, knobs(func(k *sim.Knobs) { k.ErrorRate = tc.errorRate }))
			const rate, d = 100, 500 * time.Millisecond
			res, err := load.Constant(context.Background(), newClient(t), chat(url), rate, d, load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Scheduled != 50 {
				t.Errorf("scheduled %d, want 50", res.Scheduled)
			}
			if res.Sent < 49 || res.Sent > 51 || res.Dropped != 0 || res.Interrupted {
				t.Errorf("sent %d dropped %d interrupted %v, want 50±1, 0, false", res.Sent, res.Dropped, res.Interrupted)
			}
			if got := res.Status[tc.code]; got != res.Sent || len(res.Status) != 1 || len(res.Errors) != 0 {
				t.Errorf("status %v errors %v, want all %d %s", res.Status, res.Errors, res.Sent, tc.code)
			}
			if got := s.Stats().Requests["/v1/chat/completions"]; got != int64(res.Sent) {
				t.Errorf("simulator saw %d requests, generator sent %d", got, res.Sent)
			}
			if res.SuccessPct != tc.success {
				t.Errorf("success %.2f%%, want %v", res.SuccessPct, tc.success)
			}
			if res.Latency.Count != int64(res.Sent) || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
				t.Errorf("latency %+v", res.Latency)
			}
			if res.AchievedRate < 80 || res.AchievedRate > 110 {
				t.Errorf("achieved rate %.1f/s, want about %d/s", res.AchievedRate, rate)
			}
		})
	}
}

// With the upstream answering in 50ms, latency counted from the scheduled
// send time cannot be below 50ms, whatever the generator does.
func TestConstantMeasuresFromTheSchedule(t *testing.T) {
	_, url := startSim(t, knobs(func(k *sim.Knobs) { k.Latency = 50 * time.Millisecond }))
	res, err := load.Constant(context.Background(), newClient(t), chat(url), 200, 300*time.Millisecond, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Latency.Count == 0 || res.Latency.P50 < 50_000 {
		t.Errorf("p50 %dµs over %d answers, want >= 50000µs", res.Latency.P50, res.Latency.Count)
	}
}

// A hung upstream fills the in-flight cap; the requests due then are
// dropped, and the schedule still ends on time.
func TestConstantDropsAtTheInFlightCap(t *testing.T) {
	_, url := startSim(t, knobs(func(k *sim.Knobs) { k.HangRate = 1 }))
	const d = 500 * time.Millisecond
	res, err := load.Constant(context.Background(), newClient(t), chat(url), 100, d,
		load.Options{MaxInFlight: 5, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped == 0 || res.Sent+res.Dropped != res.Scheduled {
		t.Errorf("sent %d + dropped %d, want %d with drops", res.Sent, res.Dropped, res.Scheduled)
	}
	if res.Sent < 5 || res.Errors["timeout"] != res.Sent || len(res.Status) != 0 {
		t.Errorf("sent %d, errors %v, status %v: want every sent request timed out", res.Sent, res.Errors, res.Status)
	}
	if res.SendS > 2*d.Seconds() { // generous: the point is that it is not stretched by hung requests
		t.Errorf("schedule took %.2fs, want about %s", res.SendS, d)
	}
	if res.SuccessPct != 0 {
		t.Errorf("success %.1f%%, want 0", res.SuccessPct)
	}
}

func TestConstantStopsWithTheContext(t *testing.T) {
	_, url := startSim(t, knobs(func(k *sim.Knobs) { k.HangRate = 1 }))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := load.Constant(ctx, newClient(t), chat(url), 50, time.Hour, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Sent == 0 || res.Errors["canceled"]+res.Errors["timeout"] != res.Sent {
		t.Errorf("interrupted %v sent %d errors %v", res.Interrupted, res.Sent, res.Errors)
	}
}

func TestConstantRejectsBadArguments(t *testing.T) {
	c := http.DefaultClient
	for name, run := range map[string]func() error{
		"rate": func() error {
			_, err := load.Constant(context.Background(), c, chat("http://x"), 0, time.Second, load.Options{})
			return err
		},
		"duration": func() error {
			_, err := load.Constant(context.Background(), c, chat("http://x"), 1, 0, load.Options{})
			return err
		},
		"url": func() error {
			_, err := load.Constant(context.Background(), c, chat("x"), 1, time.Second, load.Options{})
			return err
		},
		"method": func() error {
			_, err := load.Constant(context.Background(), c, load.Target{Method: "BAD METHOD", URL: "http://x"}, 1, time.Second, load.Options{})
			return err
		},
	} {
		if run() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRoundsMedianOfRoundMedians(t *testing.T) {
	_, fast := startSim(t, sim.DefaultKnobs())
	const added = 5 * time.Millisecond
	_, slow := startSim(t, knobs(func(k *sim.Knobs) { k.Latency = added }))
	calls := 0
	res, err := load.Rounds(context.Background(), newClient(t), []load.Target{chat(fast), chat(slow)}, 3, 5, 2,
		load.Options{Progress: func() { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2*(2+3*5) {
		t.Errorf("progress called %d times, want %d", calls, 2*(2+3*5))
	}
	if len(res.Targets) != 2 || len(res.Diffs) != 1 {
		t.Fatalf("targets %d diffs %d", len(res.Targets), len(res.Diffs))
	}
	for _, tr := range res.Targets {
		if len(tr.RoundMediansUS) != 3 {
			t.Errorf("%s: %d round medians, want 3", tr.URL, len(tr.RoundMediansUS))
		}
	}
	d := res.Diffs[0]
	for r, v := range d.RoundMediansUS {
		if want := res.Targets[1].RoundMediansUS[r] - res.Targets[0].RoundMediansUS[r]; v != want {
			t.Errorf("round %d: diff %.1f, want %.1f", r, v, want)
		}
	}
	if d.MedianUS < float64(added.Microseconds()) {
		t.Errorf("added %.1fµs, want >= %dµs", d.MedianUS, added.Microseconds())
	}
	if d.MedianUS != load.Quantile(d.RoundMediansUS, 0.5) || d.IQRUS < 0 || d.BaseURL != res.Targets[0].URL {
		t.Errorf("diff %+v", d)
	}
}

func TestRoundsFailsOnAnError(t *testing.T) {
	_, url := startSim(t, knobs(func(k *sim.Knobs) { k.ErrorRate = 1 }))
	if _, err := load.Rounds(context.Background(), newClient(t), []load.Target{chat(url)}, 1, 1, 0, load.Options{}); err == nil {
		t.Error("no error for a 500")
	}
	if _, err := load.Rounds(context.Background(), newClient(t), nil, 1, 1, 0, load.Options{}); err == nil {
		t.Error("no error without targets")
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for q, want := range map[float64]float64{0: 1, 0.25: 2, 0.5: 3, 0.75: 4, 1: 5} {
		if got := load.Quantile(xs, q); got != want {
			t.Errorf("q%.2f = %v, want %v", q, got, want)
		}
	}
	if xs[0] != 5 {
		t.Error("Quantile sorted its input")
	}
	if load.Quantile(nil, 0.5) != 0 {
		t.Error("empty: want 0")
	}
}

func TestResultJSONRoundTrips(t *testing.T) {
	_, url := startSim(t, sim.DefaultKnobs())
	res, err := load.Constant(context.Background(), newClient(t), chat(url), 50, 200*time.Millisecond, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back load.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, res) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, res)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	lat, _ := raw["latency_us"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_us.%s missing in %s", k, b)
		}
	}
	for _, k := range []string{"success_pct", "status", "errors", "achieved_rate", "duration_s", "dropped"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s missing in %s", k, b)
		}
	}
}
