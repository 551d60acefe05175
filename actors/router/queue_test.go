package router

import (
	"slices"
	"testing"
	"time"
)

func ids(q *queue, now time.Time) []string {
	var out []string
	for it := q.pop(now); it != nil; it = q.pop(now) {
		out = append(out, it.id)
	}
	return out
}

func TestQueueStrictPriorityFIFOWithinLevel(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q := newQueue(3, time.Minute)
	for _, it := range []*item{
		{id: "low1", level: 2}, {id: "norm1", level: 1}, {id: "high1", level: 0},
		{id: "low2", level: 2}, {id: "high2", level: 0}, {id: "norm2", level: 1},
	} {
		it.enqueued = t0
		q.push(it)
	}
	if q.len() != 6 {
		t.Fatalf("len = %d", q.len())
	}
	got := ids(q, t0.Add(time.Second))
	want := []string{"high1", "high2", "norm1", "norm2", "low1", "low2"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestQueueAgingBoundsStarvation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	aging := 2 * time.Second
	q := newQueue(3, aging)
	q.push(&item{id: "old-low", level: 2, enqueued: t0})
	// High-priority work keeps arriving; after 2 agings the low task counts
	// as level 0 and, being older, goes first.
	steps := []struct {
		at   time.Duration
		want string
	}{
		{1 * time.Second, "h1"},
		{3 * time.Second, "h2"},
		{4 * time.Second, "old-low"},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		q.push(&item{id: []string{"h1", "h2", "h3"}[i], level: 0, enqueued: now})
		if it := q.pop(now); it == nil || it.id != s.want {
			t.Fatalf("at %v popped %v, want %s", s.at, it, s.want)
		}
	}
	if it := q.pop(t0.Add(5 * time.Second)); it == nil || it.id != "h3" {
		t.Fatalf("last pop %v, want h3", it)
	}
}

func TestQueueRemovePushFrontResize(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q := newQueue(3, 0)
	for _, id := range []string{"a", "b", "c"} {
		q.push(&item{id: id, level: 2, enqueued: t0})
	}
	q.push(&item{id: "x", level: 1, enqueued: t0})
	if !q.remove("b") || q.remove("b") {
		t.Fatal("remove b should succeed once")
	}
	q.pushFront(&item{id: "retry", level: 2, enqueued: t0})
	q.resize(2) // level 2 folds into level 1, after what is there
	got := ids(q, t0)
	want := []string{"x", "retry", "a", "c"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if q.len() != 0 {
		t.Errorf("len after draining = %d", q.len())
	}
	// Out-of-range levels are clamped.
	q.push(&item{id: "neg", level: -3})
	q.push(&item{id: "big", level: 99})
	if got := ids(q, t0); !slices.Equal(got, []string{"neg", "big"}) {
		t.Errorf("clamped order %v", got)
	}
}
