package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/internal/load"
	"github.com/deer-runtime/deer/internal/sim"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func startSim(t *testing.T, k sim.Knobs) string {
	t.Helper()
	s := sim.New(k, sim.WithSeed(1))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	return srv.URL
}

const chatBody = `{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`

func deerload(t *testing.T, tty bool, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e, tty)
	return code, o.String(), e.String()
}

func TestRateJSON(t *testing.T) {
	url := startSim(t, sim.DefaultKnobs()) + "/v1/chat/completions"
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(bodyFile, []byte(chatBody), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := deerload(t, true, "rate", "--url", url, "--body", "@"+bodyFile,
		"--header", "X-Sim-Latency: 2ms", "--rate", "40", "--duration", "250ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr with --json (no bar expected): %q", errOut)
	}
	var r load.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if r.Method != "POST" || r.Scheduled != 10 || r.Status["200"] != r.Sent || r.Sent < 9 {
		t.Errorf("result %+v", r)
	}
	if r.Latency.P50 < 2000 { // the header reached the simulator
		t.Errorf("p50 %dµs, want >= 2000µs", r.Latency.P50)
	}
	again, _ := json.MarshalIndent(r, "", "  ")
	if strings.TrimSpace(out) != string(again) {
		t.Errorf("JSON does not round-trip:\n%s\nvs\n%s", out, again)
	}
}

func TestRateSummary(t *testing.T) {
	url := startSim(t, sim.DefaultKnobs()) + "/v1/chat/completions"
	code, out, errOut := deerload(t, false, "rate", "--url", url, "--body", chatBody, "--rate", "20", "--duration", "200ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"POST " + url, "4 scheduled", "success     100.00%", "status      200: 4", "errors      none", "latency µs  p50 "} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if errOut != "" {
		t.Errorf("stderr not a terminal yet written: %q", errOut)
	}
	code, _, errOut = deerload(t, true, "rate", "--url", url, "--body", chatBody, "--rate", "20", "--duration", "200ms")
	if code != 0 || !strings.Contains(errOut, "deerload rate") {
		t.Errorf("on a terminal: exit %d, stderr %q; want a progress bar", code, errOut)
	}
}

func TestRoundsJSON(t *testing.T) {
	fast := startSim(t, sim.DefaultKnobs())
	k := sim.DefaultKnobs()
	k.Latency = 3 * time.Millisecond
	slow := startSim(t, k)
	code, out, errOut := deerload(t, false, "rounds", "--url", fast+"/v1/embeddings", "--url", slow+"/v1/embeddings",
		"--body", `{"model":"sim-embed","input":"x"}`, "--rounds", "3", "--per-round", "4", "--warmup", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r load.RoundsResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if r.Rounds != 3 || len(r.Diffs) != 1 || r.Diffs[0].MedianUS < 3000 {
		t.Errorf("result %s", out)
	}
	code, out, _ = deerload(t, false, "rounds", "--url", fast+"/v1/models", "--url", slow+"/v1/models", "--rounds", "1", "--per-round", "2", "--warmup", "0")
	if code != 0 || !strings.Contains(out, "added       "+slow+"/v1/models over "+fast+"/v1/models") {
		t.Errorf("exit %d, summary:\n%s", code, out)
	}
}

func TestRunFailure(t *testing.T) {
	k := sim.DefaultKnobs()
	k.ErrorRate = 1
	url := startSim(t, k)
	code, _, errOut := deerload(t, false, "rounds", "--url", url+"/v1/models", "--rounds", "1", "--per-round", "1", "--warmup", "0")
	if code != 1 || !strings.Contains(errOut, "status 500") {
		t.Errorf("exit %d, stderr %q; want 1 and the status", code, errOut)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing mode"},
		{[]string{"blast"}, `unknown mode "blast"`},
		{[]string{"rate", "--rate", "10", "--duration", "1s"}, "--url is required"},
		{[]string{"rate", "--url", "ftp://x", "--rate", "10", "--duration", "1s"}, "--url"},
		{[]string{"rate", "--url", "http://a", "--url", "http://b", "--rate", "10", "--duration", "1s"}, "--url: rate takes one URL"},
		{[]string{"rate", "--url", "http://a", "--duration", "1s"}, "--rate"},
		{[]string{"rate", "--url", "http://a", "--rate", "-3", "--duration", "1s"}, "--rate"},
		{[]string{"rate", "--url", "http://a", "--rate", "10"}, "--duration"},
		{[]string{"rate", "--url", "http://a", "--rate", "10", "--duration", "soon"}, "-duration"},
		{[]string{"rate", "--url", "http://a", "--rate", "10", "--duration", "1s", "--max-inflight", "0"}, "--max-inflight"},
		{[]string{"rate", "--url", "http://a", "--rate", "10", "--duration", "1s", "--header", "nocolon"}, "--header"},
		{[]string{"rate", "--url", "http://a", "--rate", "10", "--duration", "1s", "--body", "@/nonexistent/x"}, "--body"},
		{[]string{"rate", "--url", "http://a", "--rate", "10", "--duration", "1s", "--method", "BAD METHOD"}, "--method"},
		{[]string{"rate", "--url", "http://a", "--rate", "10", "--duration", "1s", "--timeout", "-1s"}, "--timeout"},
		{[]string{"rate", "--url", "http://a", "--rate", "10", "--duration", "1s", "extra"}, `unexpected argument "extra"`},
		{[]string{"rounds", "--url", "http://a", "--rounds", "0"}, "--rounds"},
		{[]string{"rounds", "--url", "http://a", "--per-round", "0"}, "--per-round"},
		{[]string{"rounds", "--url", "http://a", "--warmup", "-1"}, "--warmup"},
		{[]string{"rounds", "--url", "http://a", "--rate", "5"}, "-rate"}, // not a rounds flag
	} {
		code, out, errOut := deerload(t, false, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if code, _, _ := deerload(t, false, "rate", "--help"); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
}
