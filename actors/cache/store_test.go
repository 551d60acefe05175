package cache

import (
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one operation on a Store at t0+at and the result it must give.
// Operations: "put K [TTLs]" (→ evicted keys), "get K" (→ "hit V", "miss"
// or "expired"), "del K" (→ true/false), "resize N" (→ evicted keys),
// "policy P", "purge" (→ purged keys), "keys" (→ eviction order).
type step struct {
	at   time.Duration
	op   string
	want string
}

func run(t *testing.T, s *Store, steps []step) {
	t.Helper()
	for i, st := range steps {
		if got := do(t, s, t0.Add(st.at), st.op); got != st.want {
			t.Fatalf("step %d %q at +%v: got %q, want %q", i, st.op, st.at, got, st.want)
		}
	}
}

func do(t *testing.T, s *Store, now time.Time, op string) string {
	t.Helper()
	f := strings.Fields(op)
	keysOf := func(es []Entry) string {
		ks := make([]string, len(es))
		for i, e := range es {
			ks[i] = e.Key
		}
		return strings.Join(ks, ",")
	}
	switch f[0] {
	case "put":
		var ttl time.Duration
		if len(f) > 2 {
			secs, _ := strconv.Atoi(f[2])
			ttl = time.Duration(secs) * time.Second
		}
		return keysOf(s.Put(now, f[1], []byte("v-"+f[1]), ttl))
	case "get":
		e, o := s.Lookup(now, f[1])
		if o == Hit {
			return "hit " + string(e.Value)
		}
		return o.String()
	case "del":
		return strconv.FormatBool(s.Delete(f[1]))
	case "resize":
		n, _ := strconv.Atoi(f[1])
		return keysOf(s.Resize(n))
	case "policy":
		p, err := ParsePolicy(f[1])
		if err != nil {
			t.Fatal(err)
		}
		s.SetPolicy(p)
		return ""
	case "purge":
		return strings.Join(s.PurgeExpired(now), ",")
	case "keys":
		return strings.Join(s.Keys(), ",")
	}
	t.Fatalf("bad op %q", op)
	return ""
}

func TestStorePolicies(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		cap    int
		steps  []step
	}{
		{"lru evicts least recently used", LRU, 3, []step{
			{0, "put a", ""}, {0, "put b", ""}, {0, "put c", ""},
			{1 * time.Second, "get a", "hit v-a"},
			{2 * time.Second, "put d", "b"},
			{2 * time.Second, "keys", "c,a,d"},
			{3 * time.Second, "put c", ""}, // overwrite is an access
			{3 * time.Second, "put e", "a"},
			{3 * time.Second, "keys", "d,c,e"},
			{3 * time.Second, "get b", "miss"},
		}},
		{"fifo ignores reads", FIFO, 3, []step{
			{0, "put a", ""}, {0, "put b", ""}, {0, "put c", ""},
			{1 * time.Second, "get a", "hit v-a"},
			{1 * time.Second, "put a", ""}, // overwrite keeps its place
			{2 * time.Second, "put d", "a"},
			{2 * time.Second, "keys", "b,c,d"},
		}},
		{"lfu evicts least frequent, then least recent", LFU, 3, []step{
			{0, "put a", ""}, {0, "put b", ""}, {0, "put c", ""},
			{0, "get a", "hit v-a"}, {0, "get a", "hit v-a"}, {0, "get b", "hit v-b"},
			{0, "keys", "c,b,a"},
			{0, "put d", "c"},
			{0, "put e", "d"}, // d (1 use) is older than e
			{0, "get e", "hit v-e"},
			{0, "keys", "b,e,a"}, // b and e both 2 uses, b used longer ago
			{0, "del b", "true"},
			{0, "del b", "false"},
			{0, "put f", ""},
			{0, "put g", "f"},
			{0, "keys", "g,e,a"},
		}},
		{"ttl: expired entries are misses and removed", LRU, 3, []step{
			{0, "put a 10", ""}, {0, "put b", ""},
			{9 * time.Second, "get a", "hit v-a"},
			{10 * time.Second, "get a", "expired"},
			{10 * time.Second, "get a", "miss"},
			{10 * time.Second, "keys", "b"},
			{24 * time.Hour, "get b", "hit v-b"}, // no ttl: never expires
		}},
		{"purge removes exactly what expired", FIFO, 5, []step{
			{0, "put a 5", ""}, {0, "put b 10", ""}, {0, "put c", ""},
			{4 * time.Second, "purge", ""},
			{7 * time.Second, "purge", "a"},
			{10 * time.Second, "purge", "b"},
			{10 * time.Second, "keys", "c"},
		}},
		{"resize evicts overflow by policy", LRU, 4, []step{
			{0, "put a", ""}, {0, "put b", ""}, {0, "put c", ""}, {0, "put d", ""},
			{0, "get a", "hit v-a"},
			{0, "resize 2", "b,c"},
			{0, "keys", "d,a"},
			{0, "resize 3", ""},
			{0, "put e", ""},
			{0, "keys", "d,a,e"},
		}},
		{"policy switch reorders and keeps entries", LRU, 3, []step{
			{0, "put a", ""}, {0, "put b", ""}, {0, "put c", ""},
			{0, "get b", "hit v-b"}, {0, "get b", "hit v-b"}, {0, "get a", "hit v-a"},
			{0, "keys", "c,b,a"},
			{0, "policy fifo", ""},
			{0, "keys", "a,b,c"},
			{0, "policy lfu", ""},
			{0, "keys", "c,a,b"}, // uses: c 1, a 2, b 3
			{0, "put d", "c"},
			{0, "policy lru", ""},
			{0, "keys", "b,a,d"},
		}},
		{"zero capacity passes everything through", LRU, 0, []step{
			{0, "put a", "a"},
			{0, "get a", "miss"},
			{0, "keys", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, NewStore(tt.cap, tt.policy), tt.steps)
		})
	}
}

func TestStoreCounters(t *testing.T) {
	s := NewStore(2, LRU)
	s.Put(t0, "a", []byte("1"), 10*time.Second)
	s.Put(t0, "b", []byte("2"), 0)
	s.Get(t0, "a")                           // hit
	s.Get(t0, "zz")                          // miss
	s.Put(t0, "c", []byte("3"), 0)           // evicts b
	s.Get(t0.Add(10*time.Second), "a")       // expired: miss + expired
	s.Put(t0, "d", []byte("4"), time.Second) // fits: a is gone
	s.PurgeExpired(t0.Add(time.Minute))      // d
	want := Counters{Hits: 1, Misses: 2, Evictions: 1, Expired: 2}
	if got := s.Counters(); got != want {
		t.Fatalf("counters = %+v, want %+v", got, want)
	}
	if s.Len() != 1 || s.Cap() != 2 || s.Policy() != LRU {
		t.Fatalf("len %d cap %d policy %v", s.Len(), s.Cap(), s.Policy())
	}
}

func TestStoreEvictedEntriesKeepExpiry(t *testing.T) {
	s := NewStore(1, FIFO)
	s.Put(t0, "a", []byte("1"), time.Minute)
	ev := s.Put(t0.Add(time.Second), "b", []byte("2"), time.Minute)
	if len(ev) != 1 || ev[0].Key != "a" || string(ev[0].Value) != "1" || !ev[0].ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("evicted = %+v", ev)
	}
}

func TestStoreRestore(t *testing.T) {
	entries := []Entry{
		{Key: "old", Inserted: 1, Accessed: 9, Hits: 5},
		{Key: "mid", Inserted: 2, Accessed: 3, Hits: 1},
		{Key: "new", Inserted: 7, Accessed: 7, Hits: 1},
	}
	for _, tt := range []struct {
		p       Policy
		evicted string
		keys    string
	}{
		{LRU, "mid", "new,old"},
		{FIFO, "old", "mid,new"},
		{LFU, "mid", "new,old"},
	} {
		s := NewStore(2, tt.p)
		ev := s.Restore(entries)
		if len(ev) != 1 || ev[0].Key != tt.evicted {
			t.Errorf("%v: evicted %+v, want %s", tt.p, ev, tt.evicted)
		}
		if got := strings.Join(s.Keys(), ","); got != tt.keys {
			t.Errorf("%v: keys %s, want %s", tt.p, got, tt.keys)
		}
		// New operations sort after everything restored.
		if ev := s.Put(t0, "x", nil, 0); tt.p != LFU && (len(ev) != 1 || ev[0].Key == "x") {
			t.Errorf("%v: put after restore evicted %+v", tt.p, ev)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParsePolicy("random"); err == nil || !strings.Contains(err.Error(), "cache.eviction_policy") {
		t.Errorf("ParsePolicy(random) error = %v", err)
	}
}

// model is a brute-force reference: the victim is the minimum of the
// policy's key over all entries, found by sorting.
type model struct {
	cap     int
	policy  Policy
	seq     uint64
	entries map[string]*Entry
}

func (m *model) order() []string {
	var es []*Entry
	for _, e := range m.entries {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		switch m.policy {
		case FIFO:
			return a.Inserted < b.Inserted
		case LFU:
			if a.Hits != b.Hits {
				return a.Hits < b.Hits
			}
		}
		return a.Accessed < b.Accessed
	})
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	return keys
}

func (m *model) evict() []string {
	var out []string
	for len(m.entries) > m.cap {
		k := m.order()[0]
		delete(m.entries, k)
		out = append(out, k)
	}
	return out
}

// TestStoreMatchesModel runs random operations against Store and the model
// and compares the eviction order after every step.
func TestStoreMatchesModel(t *testing.T) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		t.Run(p.String(), func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(p) + 1))
			s := NewStore(8, p)
			m := &model{cap: 8, policy: p, entries: map[string]*Entry{}}
			for i := 0; i < 5000; i++ {
				key := fmt.Sprintf("k%d", rng.Intn(16))
				var got, want []string
				switch r := rng.Intn(100); {
				case r < 45:
					for _, e := range s.Put(t0, key, nil, 0) {
						got = append(got, e.Key)
					}
					m.seq++
					if e, ok := m.entries[key]; ok {
						e.Accessed, e.Hits = m.seq, e.Hits+1
					} else {
						m.entries[key] = &Entry{Key: key, Inserted: m.seq, Accessed: m.seq, Hits: 1}
						want = m.evict()
					}
				case r < 85:
					_, ok := s.Get(t0, key)
					e, wok := m.entries[key]
					if wok {
						m.seq++
						e.Accessed, e.Hits = m.seq, e.Hits+1
					}
					if ok != wok {
						t.Fatalf("op %d: get %s = %v, model %v", i, key, ok, wok)
					}
				case r < 93:
					s.Delete(key)
					delete(m.entries, key)
				case r < 97:
					n := 2 + rng.Intn(10)
					for _, e := range s.Resize(n) {
						got = append(got, e.Key)
					}
					m.cap = n
					want = m.evict()
				default:
					np := Policy(rng.Intn(3))
					s.SetPolicy(np)
					m.policy = np
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("op %d: evicted %v, model %v", i, got, want)
				}
				if g, w := strings.Join(s.Keys(), ","), strings.Join(m.order(), ","); g != w {
					t.Fatalf("op %d: order %s, model %s", i, g, w)
				}
			}
		})
	}
}
