package router

import (
	"testing"
	"time"

	"github.com/deer-runtime/deer/messages"
)

func TestLatenciesQuantilesOverTheWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var l latencies
	if got := l.stats(t0, latencyWindow); got != (messages.LatencyStats{Window: 10}) {
		t.Fatalf("empty: %+v", got)
	}
	// 100 tasks of 1..100 ms, finished at t0; nearest rank: p50 = 50 ms, p99 = 99 ms.
	for i := 100; i >= 1; i-- {
		l.add(t0, time.Duration(i)*time.Millisecond)
	}
	steps := []struct {
		at       time.Time
		count    int
		p50, p99 float64
	}{
		{t0, 100, 0.050, 0.099},
		{t0.Add(latencyWindow - time.Nanosecond), 100, 0.050, 0.099},
		{t0.Add(latencyWindow), 0, 0, 0}, // out of the window
	}
	for _, s := range steps {
		got := l.stats(s.at, latencyWindow)
		if got.Count != s.count || got.P50 != s.p50 || got.P99 != s.p99 {
			t.Errorf("at t0+%v: %+v, want count %d p50 %v p99 %v", s.at.Sub(t0), got, s.count, s.p50, s.p99)
		}
	}
	// One slow task later: it alone is in the window then.
	t1 := t0.Add(15 * time.Second)
	l.add(t1, 2*time.Second)
	if got := l.stats(t1, latencyWindow); got.Count != 1 || got.P50 != 2 || got.P99 != 2 {
		t.Errorf("at t1: %+v", got)
	}
}

func TestLatenciesKeepTheNewest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var l latencies
	for range latencyKeep {
		l.add(t0, time.Second) // pushed out by the fast ones below
	}
	for range latencyKeep {
		l.add(t0, time.Millisecond)
	}
	if got := l.stats(t0, latencyWindow); got.Count != latencyKeep || got.P99 != 0.001 {
		t.Errorf("%+v, want the newest %d tasks, all 1 ms", got, latencyKeep)
	}
}
