package bench

import (
	"container/list"
	"math"
	"math/rand/v2"
	"sort"
)

// Zipf draws ranks 1..n with P(k) = k^-s / H(n, s), by inverse CDF over
// precomputed cumulative weights. It exists because math/rand/v2's Zipf
// needs s > 1, and the request popularity the bench models is s = 1.0.
// Not safe for concurrent use (neither is its *rand.Rand).
type Zipf struct {
	rng *rand.Rand
	cum []float64 // cum[i] = Σ_{k=1..i+1} k^-s
}

// NewZipf returns a sampler over 1..n (n ≥ 1, s ≥ 0) drawing from rng.
func NewZipf(rng *rand.Rand, n int, s float64) *Zipf {
	cum := make([]float64, n)
	sum := 0.0
	for i := range cum {
		sum += math.Pow(float64(i+1), -s)
		cum[i] = sum
	}
	return &Zipf{rng: rng, cum: cum}
}

// Next draws a rank: the k whose interval [cum[k-2], cum[k-1]) holds a
// uniform draw over [0, total).
func (z *Zipf) Next() int {
	u := z.rng.Float64() * z.cum[len(z.cum)-1]
	i := sort.Search(len(z.cum), func(i int) bool { return z.cum[i] > u })
	return min(i, len(z.cum)-1) + 1 // min: rounding can leave u at the total
}

// P is the probability of rank k (1..n).
func (z *Zipf) P(k int) float64 {
	w := z.cum[k-1]
	if k > 1 {
		w -= z.cum[k-2]
	}
	return w / z.cum[len(z.cum)-1]
}

// ZipfSequence is the bench's request sequence: count ranks over 1..n,
// Zipf(s), from a PCG seeded with seed, so that every run (and the ideal
// cache it is compared with) sees the same sequence.
func ZipfSequence(n, count int, s float64, seed uint64) []int {
	z := NewZipf(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), n, s)
	seq := make([]int, count)
	for i := range seq {
		seq[i] = z.Next()
	}
	return seq
}

// LRUHits replays keys through an LRU cache of capacity entries, empty at
// first, and returns how many found their key cached: the hit count an
// ideal cache of that size gets on the sequence (a miss stores the key,
// evicting the least recently used when full; a hit makes it the most
// recently used).
func LRUHits[K comparable](keys []K, capacity int) int {
	if capacity <= 0 {
		return 0
	}
	order := list.New() // front: most recently used
	at := make(map[K]*list.Element, min(capacity, len(keys)))
	hits := 0
	for _, k := range keys {
		if e, ok := at[k]; ok {
			hits++
			order.MoveToFront(e)
			continue
		}
		if order.Len() == capacity {
			oldest := order.Back()
			delete(at, oldest.Value.(K))
			order.Remove(oldest)
		}
		at[k] = order.PushFront(k)
	}
	return hits
}

// distinctCount is the number of different keys in keys.
func distinctCount[K comparable](keys []K) int {
	seen := make(map[K]struct{}, len(keys))
	for _, k := range keys {
		seen[k] = struct{}{}
	}
	return len(seen)
}
