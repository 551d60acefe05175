package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlagsAndMissingBinaries(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--rates", "1"}, 2, "flag provided but not defined: -rates"},
		{[]string{"--bin", t.TempDir()}, 1, "deerd not found in"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stderr); code != c.code || !strings.Contains(stderr.String(), c.says) {
			t.Errorf("deerbench %q: exit %d, stderr %q; want %d and %q", c.args, code, stderr.String(), c.code, c.says)
		}
	}
}

func TestFromRendersASavedRun(t *testing.T) {
	dir := t.TempDir()
	saved := `{"plan":{"rates":[500],"sim_latency":60000000,"step":1000000000},"targets":["direct","deerd"],
	"phase_b":[{"target":"deerd","rate":500,"result":{"sent":10,"success_pct":100,"status":{"200":10},
	"latency_us":{"count":10,"p50":61000,"p99":62000,"p99_9":63000}},"cpu_ns":10000000,"peak_rss":50000000,
	"overhead_p50_us":12.5,"overhead_p99_us":null}],"deerd_config":"[server]\n"}`
	from := filepath.Join(dir, "results.json")
	if err := os.WriteFile(from, []byte(saved), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "docs", "benchmarks.md")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--from", from, "--out", out, "--work", dir}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 500 | deerd | 100.00% |", "12 µs / —", "bench/added-p99.svg"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("document lacks %q:\n%s", want, doc)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "docs", "bench", "added-p50.svg")); err != nil {
		t.Errorf("plot not written: %v", err)
	}
}
