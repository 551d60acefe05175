package pool

import (
	"slices"
	"testing"
	"time"
)

func TestLeasesSteps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(11*time.Second)
	type step struct {
		name    string
		do      func(l *Leases) (granted []uint64)
		granted []uint64 // lease ids the step granted
		want    LeaseStats
	}
	req := func(ref uint64) Request { return Request{Owner: "w", Ref: ref} }
	acquire := func(now time.Time, ref uint64) func(*Leases) []uint64 {
		return func(l *Leases) []uint64 {
			if ls, ok := l.Acquire(now, req(ref)); ok {
				return []uint64{ls.ID}
			}
			return nil
		}
	}
	ids := func(ls []Lease) []uint64 {
		var out []uint64
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	steps := []step{
		{"first lease", acquire(t0, 1), []uint64{101}, LeaseStats{Active: 1, Max: 2, Peak: 1, Acquired: 1}},
		{"second lease", acquire(t1, 2), []uint64{102}, LeaseStats{Active: 2, Max: 2, Peak: 2, Acquired: 2}},
		{"third waits", acquire(t1, 3), nil, LeaseStats{Active: 2, Max: 2, Waiting: 1, Peak: 2, Acquired: 2}},
		{"fourth waits", acquire(t1, 4), nil, LeaseStats{Active: 2, Max: 2, Waiting: 2, Peak: 2, Acquired: 2}},
		{"release admits the first waiter", func(l *Leases) []uint64 {
			_, _, g := l.Release(t2, 101)
			return ids(g)
		}, []uint64{103}, LeaseStats{Active: 2, Max: 2, Waiting: 1, Peak: 2, Acquired: 3, Released: 1}},
		{"unknown release is ignored", func(l *Leases) []uint64 {
			_, ok, g := l.Release(t2, 101)
			if ok {
				t.Error("released lease 101 twice")
			}
			return ids(g)
		}, nil, LeaseStats{Active: 2, Max: 2, Waiting: 1, Peak: 2, Acquired: 3, Released: 1}},
		{"cancel a waiting request", func(l *Leases) []uint64 {
			return ids(l.Cancel(t2, "w", 4))
		}, nil, LeaseStats{Active: 2, Max: 2, Peak: 2, Acquired: 3, Released: 1}},
		{"raise max", func(l *Leases) []uint64 {
			return ids(l.SetMax(t2, 3))
		}, nil, LeaseStats{Active: 2, Max: 3, Peak: 2, Acquired: 3, Released: 1}},
		{"third slot", acquire(t2, 5), []uint64{104}, LeaseStats{Active: 3, Max: 3, Peak: 3, Acquired: 4, Released: 1}},
		{"lower max revokes nothing", func(l *Leases) []uint64 {
			return ids(l.SetMax(t2, 1))
		}, nil, LeaseStats{Active: 3, Max: 1, Peak: 3, Acquired: 4, Released: 1}},
		{"waits over the lowered max", acquire(t2, 6), nil, LeaseStats{Active: 3, Max: 1, Waiting: 1, Peak: 3, Acquired: 4, Released: 1}},
		{"reclaim leases held 10s or more", func(l *Leases) []uint64 {
			rec, g := l.Reclaim(t3, 10*time.Second)
			if got := ids(rec); !slices.Equal(got, []uint64{102}) {
				t.Errorf("reclaimed %v, want [102] (granted at t1; 103 and 104 are 9s old)", got)
			}
			return ids(g)
		}, nil, LeaseStats{Active: 2, Max: 1, Waiting: 1, Peak: 3, Acquired: 4, Released: 1, Reclaimed: 1}},
		{"cancel a granted lease releases it", func(l *Leases) []uint64 {
			return ids(l.Cancel(t3, "w", 5))
		}, nil, LeaseStats{Active: 1, Max: 1, Waiting: 1, Peak: 3, Acquired: 4, Released: 2, Reclaimed: 1}},
		{"release under max admits the waiter", func(l *Leases) []uint64 {
			_, _, g := l.Release(t3, 103)
			return ids(g)
		}, []uint64{105}, LeaseStats{Active: 1, Max: 1, Peak: 3, Acquired: 5, Released: 3, Reclaimed: 1}},
	}
	l := NewLeases(2, 100)
	for _, s := range steps {
		got := s.do(l)
		if !slices.Equal(got, s.granted) {
			t.Fatalf("%s: granted %v, want %v", s.name, got, s.granted)
		}
		if st := l.Stats(); st != s.want {
			t.Fatalf("%s: stats %+v, want %+v", s.name, st, s.want)
		}
	}
}

func TestLeasesOldestAndGenerations(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLeases(5, 0)
	if _, ok := l.Oldest(); ok {
		t.Fatal("empty ledger has an oldest lease")
	}
	a, _ := l.Acquire(t0.Add(time.Second), Request{Owner: "a"})
	l.SetGen(1)
	b, _ := l.Acquire(t0, Request{Owner: "b"})
	if a.Gen != 0 || b.Gen != 1 {
		t.Fatalf("generations %d, %d; want 0, 1", a.Gen, b.Gen)
	}
	if o, _ := l.Oldest(); !o.Equal(t0) {
		t.Fatalf("oldest %v, want %v", o, t0)
	}
	if n0, n1 := l.ActiveOn(0), l.ActiveOn(1); n0 != 1 || n1 != 1 {
		t.Fatalf("ActiveOn = %d, %d; want 1, 1", n0, n1)
	}
	if u := l.Stats().Utilization(); u != 0.4 {
		t.Fatalf("utilization %v, want 0.4", u)
	}
}
