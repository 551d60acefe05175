package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/chaos"
)

func TestFlagsAndMissingBinaries(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--rates", "1"}, 2, "flag provided but not defined: -rates"},
		{[]string{"--grace", "2s"}, 2, "grace (2s) must exceed the worker timeout"},
		{[]string{"--rate", "-1"}, 2, "rate must be > 0"},
		{[]string{"--bin", t.TempDir()}, 1, "deerd not found in"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stderr); code != c.code || !strings.Contains(stderr.String(), c.says) {
			t.Errorf("deerchaos %q: exit %d, stderr %q; want %d and %q", c.args, code, stderr.String(), c.code, c.says)
		}
	}
}

// --from renders the document and the timeline from a saved run, keeping
// the hand-written part of the document.
func TestFromRendersASavedRun(t *testing.T) {
	dir := t.TempDir()
	res := chaos.Results{
		Plan: chaos.QuickPlan(), Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Sent: 3,
		Total: chaos.Counts{Sent: 3, Answered: 3, Succeeded: 3}, HealthyAfterMS: 120,
		Phases: []chaos.PhaseResult{{Name: "panic router", Kind: chaos.PhasePanic, ActualEndS: 1, RemovedS: 0.6, HealthyAfterMS: 120,
			Faults: []chaos.FaultOutcome{{Spec: chaos.FaultSpec{Actor: "router", Kind: "panic", Count: 3}, ID: "f1", Fired: 3}},
			Counts: chaos.Counts{Sent: 3, Answered: 3, Succeeded: 3}}},
		Timeline:    chaos.Timeline{BucketS: 1, Sent: []int{3}, Succeeded: []int{3}, Failed: []int{0}, Lost: []int{0}},
		DeerdConfig: "[server]\n",
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	from := filepath.Join(dir, "results.json")
	if err := os.WriteFile(from, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "docs", "chaos.md")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("# Fault drill\n\nBy hand.\n\n"+chaos.BeginMarker+"\nold\n"+chaos.EndMarker+"\n\n## After\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--from", from, "--out", out}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"By hand.", "| panic router | 0.0–1.0 | panic ×3, fired 3 | 3 | 3 |", "chaos/timeline.svg", "## After"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("document lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(string(doc), "\nold\n") {
		t.Error("the old generated section is still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "docs", "chaos", "timeline.svg")); err != nil {
		t.Errorf("timeline not written: %v", err)
	}
}
