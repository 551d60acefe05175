package sim

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestKnobsValidate(t *testing.T) {
	ok := DefaultKnobs()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, tc := range []struct {
		key    string
		change func(*Knobs)
	}{
		{"latency", func(k *Knobs) { k.Latency = -time.Millisecond }},
		{"error_rate", func(k *Knobs) { k.ErrorRate = 1.5 }},
		{"error_rate", func(k *Knobs) { k.ErrorRate = math.NaN() }},
		{"hang_rate", func(k *Knobs) { k.HangRate = -0.1 }},
		{"reset_rate", func(k *Knobs) { k.ResetRate = 2 }},
		{"capacity", func(k *Knobs) { k.Capacity = -1 }},
		{"capacity", func(k *Knobs) { k.Capacity = math.Inf(1) }},
		{"retry_after", func(k *Knobs) { k.RetryAfter = -1 }},
		{"stream_chunks", func(k *Knobs) { k.StreamChunks = 0 }},
		{"stream_chunks", func(k *Knobs) { k.StreamChunks = MaxStreamChunks + 1 }},
		{"stream_interval", func(k *Knobs) { k.StreamInterval = -1 }},
	} {
		k := DefaultKnobs()
		tc.change(&k)
		err := k.Validate()
		var ke *KnobError
		if !errors.As(err, &ke) || ke.Key != tc.key {
			t.Errorf("%+v: got %v, want a KnobError for %s", k, err, tc.key)
		}
	}
}

func TestKnobsJSONPartialUpdate(t *testing.T) {
	k := DefaultKnobs()
	if err := json.Unmarshal([]byte(`{"latency": "300ms", "error_rate": 0.1, "stream_interval": 0.5, "capacity": 20}`), &k); err != nil {
		t.Fatal(err)
	}
	want := DefaultKnobs()
	want.Latency, want.ErrorRate, want.StreamInterval, want.Capacity = 300*time.Millisecond, 0.1, 500*time.Millisecond, 20
	if k != want {
		t.Fatalf("got %+v, want %+v", k, want)
	}

	// The wire form round-trips.
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"latency":"300ms"`) || !strings.Contains(string(b), `"stream_interval":"500ms"`) {
		t.Errorf("marshal: %s", b)
	}
	var back Knobs
	if err := json.Unmarshal(b, &back); err != nil || back != k {
		t.Errorf("round trip: %+v, %v; want %+v", back, err, k)
	}
}

func TestKnobsJSONErrorsNameTheKeyAndChangeNothing(t *testing.T) {
	for _, tc := range []struct{ body, key, reason string }{
		{`{"bogus": 1}`, "bogus", "unknown knob"},
		{`{"error_rate": 2}`, "error_rate", "between 0 and 1"},
		{`{"error_rate": "high"}`, "error_rate", "must be a number"},
		{`{"retry_after": 1.5}`, "retry_after", "must be an integer"},
		{`{"stream_chunks": null}`, "stream_chunks", "must be an integer"},
		{`{"latency": "fast"}`, "latency", "duration"},
		{`{"latency": true}`, "latency", "duration"},
		{`{"latency": "-1s"}`, "latency", ">= 0"},
		{`{"latency": 1e300}`, "latency", "out of range"},
		{`[1]`, "", "JSON object"},
		{`{"latency": "1s", "hang_rate": 7}`, "hang_rate", "between 0 and 1"},
	} {
		k := DefaultKnobs()
		err := k.UnmarshalJSON([]byte(tc.body))
		var ke *KnobError
		if !errors.As(err, &ke) || ke.Key != tc.key || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: got %v, want key %q and %q", tc.body, err, tc.key, tc.reason)
		}
		if k != DefaultKnobs() {
			t.Errorf("%s: knobs changed to %+v", tc.body, k)
		}
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var b bucket
	b.reset(2, t0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, false}, // a burst of one second's worth
		{250 * time.Millisecond, false}, // half a token
		{500 * time.Millisecond, true},  // one token back
		{500 * time.Millisecond, false},
		{10 * time.Second, true}, {10 * time.Second, true}, {10 * time.Second, false}, // refill caps at the burst
	}
	for i, s := range steps {
		if got := b.allow(t0.Add(s.at)); got != s.want {
			t.Errorf("step %d at %v: allow = %v, want %v", i, s.at, got, s.want)
		}
	}

	b.reset(0.5, t0) // below one per second: a burst of one, then one per 2s
	for i, s := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Second, false}, {2 * time.Second, true}} {
		if got := b.allow(t0.Add(s.at)); got != s.want {
			t.Errorf("rate 0.5 step %d: allow = %v, want %v", i, got, s.want)
		}
	}

	b.reset(0, t0)
	for range 1000 {
		if !b.allow(t0) {
			t.Fatal("capacity 0 must be unlimited")
		}
	}
}

func TestCountersKeepTheLastInputCounts(t *testing.T) {
	c := newCounters(time.Time{})
	for i := range MaxInputCounts + 5 {
		c.embedding(i)
	}
	s := c.snapshot()
	if len(s.EmbeddingInputCounts) != MaxInputCounts || s.EmbeddingInputCounts[0] != 5 ||
		s.EmbeddingInputCounts[MaxInputCounts-1] != MaxInputCounts+4 {
		t.Fatalf("kept %d counts from %d to %d", len(s.EmbeddingInputCounts), s.EmbeddingInputCounts[0], s.EmbeddingInputCounts[len(s.EmbeddingInputCounts)-1])
	}
	if s.EmbeddingCalls != MaxInputCounts+5 {
		t.Errorf("calls = %d", s.EmbeddingCalls)
	}
}

func TestSplitPiecesConcatenatesBack(t *testing.T) {
	for _, text := range []string{"sim reply to: a b c d e f", "one", ""} {
		for n := 1; n <= 10; n++ {
			p := splitPieces(text, n)
			if len(p) != n || strings.Join(p, "") != text {
				t.Errorf("splitPieces(%q, %d) = %q", text, n, p)
			}
		}
	}
}
