package sim

import (
	"net/http"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/clock"
)

func TestRetryAfterFollowsRetriesOfTheSameBody(t *testing.T) {
	fc := clock.NewFake(time.Unix(1700000000, 0))
	k := quiet()
	k.Capacity, k.RetryAfter = 1, 2
	s, url := start(t, k, WithClock(fc))
	c := newClient(t, true)
	a := `{"model":"sim-model","messages":[{"role":"user","content":"a"}]}`
	b := `{"model":"sim-model","messages":[{"role":"user","content":"b"}]}`
	status := func(body string) int {
		t.Helper()
		resp, _ := do(t, c, "POST", url+chatPath, body)
		return resp.StatusCode
	}

	if got := status(a); got != http.StatusOK { // takes the bucket's one token
		t.Fatalf("first request: %d", got)
	}
	if got := status(b); got != http.StatusTooManyRequests { // b must wait 2 s
		t.Fatalf("over capacity: %d", got)
	}
	fc.Advance(500 * time.Millisecond)
	if got := status(b); got != http.StatusTooManyRequests { // early retry, refused again
		t.Fatalf("early retry: %d", got)
	}
	fc.Advance(2500 * time.Millisecond)
	if got := status(b); got != http.StatusOK { // waited the 2 s
		t.Fatalf("retry after the wait: %d", got)
	}
	if got := status(a); got != http.StatusTooManyRequests { // a was never refused: not a retry
		t.Fatalf("a again: %d", got)
	}

	got := s.Stats().RetryAfter
	want := RetryAfterStats{Asked: 3, Retried: 2, Early: 1, MinWaitMS: 500}
	if got != want {
		t.Errorf("retry_after = %+v, want %+v", got, want)
	}
	s.ResetStats()
	fc.Advance(5 * time.Second)
	status(a) // a's 429 was forgotten by the reset
	if got := s.Stats().RetryAfter; got != (RetryAfterStats{}) {
		t.Errorf("after reset: %+v", got)
	}
}

func TestRetryAfterForgetsTheOldestHalfWhenFull(t *testing.T) {
	w := newWaits()
	t0 := time.Unix(1700000000, 0)
	for i := range maxAsked + 1 {
		w.asked([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, t0.Add(time.Duration(i)), time.Second)
	}
	if n := len(w.told); n > maxAsked/2+1 || n < maxAsked/2-1 {
		t.Fatalf("remembered %d after overflow, want about %d", n, maxAsked/2)
	}
	w.arrived([]byte{0, 0, 0}, t0.Add(time.Hour)) // the oldest: forgotten
	newest := maxAsked
	w.arrived([]byte{byte(newest), byte(newest >> 8), byte(newest >> 16)}, t0.Add(time.Hour))
	if st := w.snapshot(); st.Retried != 1 || st.Asked != maxAsked+1 {
		t.Errorf("stats %+v, want 1 retry of %d asked", st, maxAsked+1)
	}
}
