package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/sim"
)

// taskLine is the router's log line for one task.
type taskLine struct {
	Message   string   `json:"message"`
	Status    string   `json:"status"`
	Error     string   `json:"error"`
	Attempts  int      `json:"attempts"`
	LatencyMS float64  `json:"latency_ms"`
	HeadersMS *float64 `json:"headers_ms"`
}

// taskLines are the task lines logged so far.
func taskLines(t *testing.T, logs *actortest.SyncBuffer) []taskLine {
	t.Helper()
	var out []taskLine
	for _, l := range strings.Split(logs.String(), "\n") {
		var tl taskLine
		if json.Unmarshal([]byte(l), &tl) == nil && (tl.Message == "task" || tl.Message == "slow task") {
			out = append(out, tl)
		}
	}
	return out
}

// outcomes is deer_tasks_total for upstream sim, by outcome.
func outcomes(h *harness) string {
	var buf bytes.Buffer
	h.rt.MetricsSet().WritePrometheus(&buf)
	var lines []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, `deer_tasks_total{upstream="sim"`) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// A streamed call whose client hangs up mid-stream is logged and counted
// client_closed, with the stream's real duration (on deer's clock), not as
// succeeded when its headers came.
func TestClientLeavingAStreamIsClientClosed(t *testing.T) {
	s, _, url := streamingSim(t, 5)
	cfg := simConfig(t, url)
	cfg.Monitoring.DetailedLogging = true
	logs := &actortest.SyncBuffer{}
	h := start(t, cfg, deer.WithLogger(zerolog.New(logs), nil))
	t.Cleanup(s.Close)
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("sim-model", "endless", true)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	nextEvent(t, sseReader(t, bufio.NewReader(resp.Body)), "the first chunk")
	h.clk.Advance(3 * time.Second) // the stream has been open 3 s
	if n := len(taskLines(t, logs)); n != 0 {
		t.Fatalf("the task was logged before its stream ended: %s", logs)
	}
	leave()
	actortest.Eventually(t, "the task's log line", func() bool { return len(taskLines(t, logs)) == 1 })
	tl := taskLines(t, logs)[0]
	if tl.Status != "failed" || tl.Error != "client_closed" || tl.LatencyMS != 3000 || tl.HeadersMS == nil || *tl.HeadersMS != 0 {
		t.Errorf("log line %+v, want failed client_closed after 3000 ms, headers at 0 ms", tl)
	}
	if got, want := outcomes(h), `deer_tasks_total{upstream="sim",outcome="client_closed"} 1`; got != want {
		t.Errorf("outcomes:\n%s\nwant:\n%s", got, want)
	}
}

// A stream read to its end is succeeded, with the whole stream's duration.
func TestStreamReadToItsEndIsSucceededWithItsDuration(t *testing.T) {
	s, simClock, url := streamingSim(t, 2)
	cfg := simConfig(t, url)
	cfg.Monitoring.DetailedLogging = true
	logs := &actortest.SyncBuffer{}
	h := start(t, cfg, deer.WithLogger(zerolog.New(logs), nil))
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("sim-model", "two words", true)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := sseReader(t, bufio.NewReader(resp.Body))
	nextEvent(t, events, "the first chunk")
	h.clk.Advance(2 * time.Second)
	if !simClock.WaitForTimers(ctx, 1) {
		t.Fatal("the upstream did not wait for its next chunk")
	}
	simClock.Advance(time.Second)
	nextEvent(t, events, "the second chunk")
	nextEvent(t, events, "[DONE]")
	actortest.Eventually(t, "the task's log line", func() bool { return len(taskLines(t, logs)) == 1 })
	if tl := taskLines(t, logs)[0]; tl.Status != "succeeded" || tl.Error != "" || tl.LatencyMS != 2000 {
		t.Errorf("log line %+v, want succeeded after 2000 ms", tl)
	}
	if got, want := outcomes(h), `deer_tasks_total{upstream="sim",outcome="succeeded"} 1`; got != want {
		t.Errorf("outcomes:\n%s\nwant:\n%s", got, want)
	}
}

// A buffered call whose client hangs up while the upstream works is
// client_closed too (not "cancelled", which is DELETE's), with the attempt
// it made and its duration.
func TestClientLeavingABufferedCallIsClientClosed(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	cfg := simConfig(t, url)
	cfg.Monitoring.DetailedLogging = true
	logs := &actortest.SyncBuffer{}
	h := start(t, cfg, deer.WithLogger(zerolog.New(logs), nil))
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/proxy/sim/v1/chat/completions", strings.NewReader(chatBody("sim-model", "wait", false)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Sim-Fault", "hang")
	done := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	actortest.Eventually(t, "the call to reach the upstream", func() bool { return s.Stats().InFlight == 1 })
	h.clk.Advance(1500 * time.Millisecond)
	leave()
	<-done
	actortest.Eventually(t, "the task's log line", func() bool { return len(taskLines(t, logs)) == 1 })
	if tl := taskLines(t, logs)[0]; tl.Status != "failed" || tl.Error != "client_closed" || tl.Attempts != 1 || tl.LatencyMS != 1500 {
		t.Errorf("log line %+v, want failed client_closed after 1 attempt and 1500 ms", tl)
	}
	if got, want := outcomes(h), `deer_tasks_total{upstream="sim",outcome="client_closed"} 1`; got != want {
		t.Errorf("outcomes:\n%s\nwant:\n%s", got, want)
	}
}
