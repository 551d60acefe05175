package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestZipfProbabilitiesAreOneOverK(t *testing.T) {
	z := NewZipf(rand.New(rand.NewPCG(1, 2)), 4, 1.0)
	h := 1 + 1.0/2 + 1.0/3 + 1.0/4 // H(4) = 25/12
	for k := 1; k <= 4; k++ {
		if got, want := z.P(k), 1/float64(k)/h; math.Abs(got-want) > 1e-12 {
			t.Errorf("P(%d) = %g, want %g", k, got, want)
		}
	}
}

func TestZipfDrawsFollowOneOverK(t *testing.T) {
	const n, draws = 50, 400_000
	z := NewZipf(rand.New(rand.NewPCG(7, 11)), n, 1.0)
	counts := make([]int, n+1)
	for range draws {
		k := z.Next()
		if k < 1 || k > n {
			t.Fatalf("drew %d, outside 1..%d", k, n)
		}
		counts[k]++
	}
	h := 0.0
	for k := 1; k <= n; k++ {
		h += 1 / float64(k)
	}
	for _, k := range []int{1, 2, 3, 5, 10, 25, 50} {
		want := draws / float64(k) / h
		// 5 standard deviations of a binomial count, plus 1% for luck.
		tol := 5*math.Sqrt(want) + 0.01*want
		if got := float64(counts[k]); math.Abs(got-want) > tol {
			t.Errorf("rank %d drawn %d times, want %.0f ± %.0f", k, counts[k], want, tol)
		}
	}
	if r := float64(counts[1]) / float64(counts[2]); math.Abs(r-2) > 0.05 {
		t.Errorf("rank 1 / rank 2 = %.3f, want about 2 (1/k)", r)
	}
}

func TestZipfZeroExponentIsUniformAndEdgesAreReachable(t *testing.T) {
	z := NewZipf(rand.New(rand.NewPCG(3, 4)), 3, 0)
	seen := map[int]int{}
	for range 30_000 {
		seen[z.Next()]++
	}
	for k := 1; k <= 3; k++ {
		if seen[k] < 9_500 || seen[k] > 10_500 {
			t.Errorf("s = 0: rank %d drawn %d times of 30000, want about 10000", k, seen[k])
		}
	}
	one := NewZipf(rand.New(rand.NewPCG(5, 6)), 1, 1.0)
	for range 100 {
		if k := one.Next(); k != 1 {
			t.Fatalf("n = 1 drew %d", k)
		}
	}
}

func TestZipfSequenceIsFixedBySeed(t *testing.T) {
	a, b := ZipfSequence(1000, 500, 1.0, 42), ZipfSequence(1000, 500, 1.0, 42)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed must give the same sequence")
	}
	if c := ZipfSequence(1000, 500, 1.0, 43); slices.Equal(a, c) {
		t.Fatal("another seed should give another sequence")
	}
}

func TestLRUHitsOnHandCheckedSequences(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keys     []int
		capacity int
		want     int
	}{
		// cap 2: 1 m [1]; 2 m [2 1]; 1 h [1 2]; 3 m, evicts 2 [3 1];
		// 2 m, evicts 1 [2 3]; 1 m, evicts 3 [1 2].
		{"recency decides the eviction", []int{1, 2, 1, 3, 2, 1}, 2, 1},
		// cap 3 holds all three keys: only first sightings miss.
		{"room for every key", []int{1, 2, 1, 3, 2, 1}, 3, 3},
		// cap 2: 1 m; 2 m; 3 m, evicts 1; 1 m, evicts 2; 2 m, evicts 3.
		{"cyclic sequence one larger than the cache", []int{1, 2, 3, 1, 2}, 2, 0},
		// cap 2: the hit on 1 keeps it; 3 evicts 2, not 1.
		{"a hit protects from eviction", []int{1, 2, 1, 3, 1}, 2, 2},
		{"capacity 1", []int{4, 4, 5, 4, 4}, 1, 2},
		{"no capacity", []int{1, 1, 1}, 0, 0},
		{"empty sequence", nil, 5, 0},
	} {
		if got := LRUHits(tc.keys, tc.capacity); got != tc.want {
			t.Errorf("%s: LRUHits(%v, %d) = %d, want %d", tc.name, tc.keys, tc.capacity, got, tc.want)
		}
	}
}

func TestLRUHitsWithRoomForEveryKeyMissesOnlyFirstSightings(t *testing.T) {
	seq := ZipfSequence(2000, 10_000, 1.0, 1)
	d := distinctCount(seq)
	if got := LRUHits(seq, 2000); got != len(seq)-d {
		t.Errorf("LRU as large as the key space: %d hits, want %d (requests − distinct)", got, len(seq)-d)
	}
	if small := LRUHits(seq, 100); small >= len(seq)-d || small <= 0 {
		t.Errorf("a 100-entry LRU got %d hits; want fewer than %d and some", small, len(seq)-d)
	}
}
