package cache

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// ownedFront is a Front as cache/l1 sets it up: enabled, capacity n.
func ownedFront(t testing.TB, n int, p Policy) (*Front, frontStore) {
	t.Helper()
	f := NewFront()
	s := frontStore{f}
	s.SetPolicy(p)
	if ev, _ := s.Resize(n); len(ev) != 0 {
		t.Fatalf("resizing an empty front evicted %v", ev)
	}
	f.setEnabled(true)
	return f, s
}

func TestFrontLookup(t *testing.T) {
	var nilFront *Front
	if _, _, ok := nilFront.Lookup(t0, "k"); ok {
		t.Fatal("nil front hit")
	}

	f := NewFront()
	s := frontStore{f}
	if _, _, ok := f.Lookup(t0, "k"); ok {
		t.Fatal("new front hit")
	}
	if _, _, c := s.stats(); c != (Counters{}) {
		t.Fatalf("a front nobody owns yet counted %+v", c)
	}

	f, s = ownedFront(t, 2, LRU)
	s.PutUntil("k", []byte("v"), t0.Add(10*time.Second))
	s.PutUntil("forever", []byte("f"), time.Time{})

	v, exp, ok := f.Lookup(t0.Add(9*time.Second), "k")
	if !ok || string(v) != "v" || !exp.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("lookup before expiry = %q %v %v", v, exp, ok)
	}
	if v, exp, ok := f.Lookup(t0.Add(time.Hour), "forever"); !ok || string(v) != "f" || !exp.IsZero() {
		t.Fatalf("lookup of an entry without expiry = %q %v %v", v, exp, ok)
	}
	if v, exp, ok := f.Lookup(t0.Add(10*time.Second), "k"); ok || v != nil || !exp.IsZero() {
		t.Fatalf("lookup at expiry = %q %v %v", v, exp, ok)
	}
	if _, _, ok := f.Lookup(t0, "absent"); ok {
		t.Fatal("absent key hit")
	}
	n, _, c := s.stats()
	if want := (Counters{Hits: 2, Misses: 2, Expired: 1}); c != want || n != 1 {
		t.Fatalf("entries %d, counters %+v, want 1 and %+v (the expired entry is removed)", n, c, want)
	}

	// A lookup is an access: under LRU, the entry looked up last goes last.
	s.PutUntil("a", nil, time.Time{})
	f.Lookup(t0, "forever")
	if ev, _ := s.PutUntil("b", nil, time.Time{}); len(ev) != 1 || ev[0].Key != "a" {
		t.Fatalf("evicted %+v, want a (forever was looked up since)", ev)
	}

	// Disabled: misses, counts nothing, keeps the entries.
	f.setEnabled(false)
	if _, _, ok := f.Lookup(t0, "forever"); ok {
		t.Fatal("disabled front hit")
	}
	if _, _, c2 := s.stats(); c2.Hits != c.Hits+1 || c2.Misses != c.Misses {
		t.Fatalf("disabled lookup counted: %+v then %+v", c, c2)
	}
	f.setEnabled(true)
	if _, _, ok := f.Lookup(t0, "forever"); !ok {
		t.Fatal("entry lost while disabled")
	}
}

// The Front keeps the Prometheus counters current on every lookup, and
// a second owner (a restarted cache/l1) neither repeats nor loses counts.
func TestFrontMetrics(t *testing.T) {
	set := metrics.NewSet()
	f, s := ownedFront(t, 10, LRU)
	f.attach(newTierMetrics(set, "l1"))
	s.PutUntil("k", []byte("v"), time.Time{})
	f.Lookup(t0, "k")
	f.Lookup(t0, "absent")
	counter := func(name string) uint64 {
		return set.GetOrCreateCounter(fmt.Sprintf("%s{tier=%q}", name, "l1")).Get()
	}
	if h, m := counter("deer_cache_hits_total"), counter("deer_cache_misses_total"); h != 1 || m != 1 {
		t.Fatalf("hits %d misses %d, want 1 and 1", h, m)
	}
	f.attach(newTierMetrics(set, "l1")) // the next incarnation
	f.Lookup(t0, "k")
	if h, m := counter("deer_cache_hits_total"), counter("deer_cache_misses_total"); h != 2 || m != 1 {
		t.Fatalf("after re-attach: hits %d misses %d, want 2 and 1", h, m)
	}
	if g := set.GetOrCreateGauge(`deer_cache_entries{tier="l1"}`, nil).Get(); g != 1 {
		t.Fatalf("entries gauge %v", g)
	}
}

// Readers on many goroutines and the owner writing at once: run with
// -race. Every lookup is counted exactly once.
func TestFrontConcurrentReadersAndOwner(t *testing.T) {
	f, s := ownedFront(t, 64, LFU)
	const readers, reads = 4, 2000
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range reads {
				if v, _, ok := f.Lookup(t0, fmt.Sprint((i+r)%128)); ok && len(v) == 0 {
					t.Error("hit with an empty value")
					return
				}
			}
		}()
	}
	for i := range 5000 {
		k := fmt.Sprint(i % 128)
		switch i % 5 {
		case 0:
			s.Delete(k)
		case 1:
			s.Resize(32 + i%64)
		default:
			s.PutUntil(k, []byte(k), t0.Add(time.Hour))
		}
	}
	wg.Wait()
	if _, _, c := s.stats(); c.Hits+c.Misses != readers*reads {
		t.Fatalf("hits %d + misses %d != %d lookups", c.Hits, c.Misses, readers*reads)
	}
}

func TestFrontLookupMissDoesNotAllocate(t *testing.T) {
	f, s := ownedFront(t, 10, LRU)
	s.PutUntil("present", []byte("v"), time.Time{})
	key := "absent"
	if n := testing.AllocsPerRun(1000, func() { f.Lookup(t0, key) }); n != 0 {
		t.Fatalf("a miss allocates %v times", n)
	}
	f.setEnabled(false)
	if n := testing.AllocsPerRun(1000, func() { f.Lookup(t0, "present") }); n != 0 {
		t.Fatalf("a disabled lookup allocates %v times", n)
	}
}

// benchFront is a Front as in production: metrics attached, 1000 entries.
func benchFront(b *testing.B) *Front {
	f, s := ownedFront(b, 1000, LRU)
	f.attach(newTierMetrics(metrics.NewSet(), "l1"))
	for i := range 1000 {
		s.PutUntil(fmt.Sprintf("key-%d", i), []byte("value"), t0.Add(time.Hour))
	}
	return f
}

func benchLookup(b *testing.B, key string) {
	f := benchFront(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.Lookup(t0, key)
	}
}

func BenchmarkFrontLookupMiss(b *testing.B) { benchLookup(b, "absent") }
func BenchmarkFrontLookupHit(b *testing.B)  { benchLookup(b, "key-500") }

func BenchmarkFrontLookupHitParallel(b *testing.B) {
	f := benchFront(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.Lookup(t0, "key-500")
		}
	})
}
