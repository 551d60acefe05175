package taskid

import (
	"strings"
	"sync"
	"testing"

	"github.com/deer-runtime/deer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestFormat(t *testing.T) {
	if encoding.EncodedLen(bits/8) != Len-len(Prefix) || Len != 31 {
		t.Fatalf("Len = %d, want 31 (task_ and 26 base32 characters)", Len)
	}
	for range 1000 {
		id := New()
		rest, ok := strings.CutPrefix(id, Prefix)
		if !ok || len(id) != Len {
			t.Fatalf("id %q: want %q and %d characters", id, Prefix, Len)
		}
		if strings.Trim(rest, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("id %q: not lowercase base32", id)
		}
		raw, err := encoding.DecodeString(rest)
		if err != nil || len(raw) != 16 {
			t.Fatalf("id %q does not decode to 16 bytes: %v", id, err)
		}
	}
}

func TestUnique(t *testing.T) {
	const goroutines, each = 8, 20000
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range each {
				ids[g] = append(ids[g], New())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]struct{}, goroutines*each)
	for _, batch := range ids {
		for _, id := range batch {
			if _, dup := seen[id]; dup {
				t.Fatalf("id %q made twice", id)
			}
			seen[id] = struct{}{}
		}
	}
}

// TestNotSequential guards against a counter creeping back in: two ids in a
// row share no long common prefix after "task_".
func TestNotSequential(t *testing.T) {
	long := 0
	for range 1000 {
		a, b := New()[len(Prefix):], New()[len(Prefix):]
		n := 0
		for n < len(a) && a[n] == b[n] {
			n++
		}
		if n >= 4 { // chance 1 in 2^20 per pair
			long++
		}
	}
	if long > 2 {
		t.Fatalf("%d of 1000 consecutive id pairs share 4+ leading characters: not random", long)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = New()
	}
}

func BenchmarkNewParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = New()
		}
	})
}
