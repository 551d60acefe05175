package cache

import (
	"net/http"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// planConfig has three upstreams, one per cache setting.
func planConfig() *conf.Config {
	cfg := conf.Default()
	auto, always, never := conf.NewUpstream("http://a"), conf.NewUpstream("http://b"), conf.NewUpstream("http://c")
	always.Cache, never.Cache = "always", "never"
	cfg.Upstreams = map[string]conf.Upstream{"auto": auto, "always": always, "never": never}
	return cfg
}

const (
	chatT0   = `{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	chatWarm = `{"model":"m","temperature":0.7,"messages":[{"role":"user","content":"hi"}]}`
	chatNone = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	embed    = `{"model":"e","input":"hello"}`
)

func TestPlanFor(t *testing.T) {
	ttl := time.Duration(conf.Default().Cache.DefaultTTL * float64(time.Second))
	all := Plan{Lookup: true, Store: true, Coalesce: true, TTL: ttl}
	none := Plan{}
	task := func(upstream, method, path, body string) messages.Task {
		return messages.Task{Upstream: upstream, Method: method, Path: path, Body: []byte(body)}
	}
	for _, tc := range []struct {
		name string
		task messages.Task
		cfg  func(*conf.Config)
		want Plan // Key is checked apart: set exactly when a flag is
	}{
		// what "auto" caches
		{"GET", task("auto", "GET", "/search?q=deer", ""), nil, all},
		{"embeddings", task("auto", "POST", "/v1/embeddings", embed), nil, all},
		{"embeddings, method left empty", task("auto", "", "/v1/embeddings", embed), nil, all},
		{"embeddings with a query", task("auto", "POST", "/v1/embeddings?api-version=1", embed), nil, all},
		{"chat at temperature 0", task("auto", "POST", "/v1/chat/completions", chatT0), nil, all},
		{"chat at temperature 0.0", task("auto", "POST", "/v1/chat/completions", `{"temperature":0.0}`), nil, all},
		{"chat at temperature -0e0", task("auto", "POST", "/v1/chat/completions", `{"temperature":-0e0}`), nil, all},
		{"chat at temperature 0.000E+3", task("auto", "POST", "/v1/chat/completions", `{"temperature":0.000E+3}`), nil, all},
		{"legacy completions at temperature 0", task("auto", "POST", "/v1/completions", `{"prompt":"x","temperature":0}`), nil, all},
		{"chat at temperature 0.7", task("auto", "POST", "/v1/chat/completions", chatWarm), nil, none},
		{"chat at temperature 0.001", task("auto", "POST", "/v1/chat/completions", `{"temperature":0.001}`), nil, none},
		{"chat at temperature 1e-9", task("auto", "POST", "/v1/chat/completions", `{"temperature":1e-9}`), nil, none},
		{"chat without temperature (OpenAI's default is 1)", task("auto", "POST", "/v1/chat/completions", chatNone), nil, none},
		{"chat at temperature null", task("auto", "POST", "/v1/chat/completions", `{"temperature":null}`), nil, none},
		{"chat at temperature \"0\"", task("auto", "POST", "/v1/chat/completions", `{"temperature":"0"}`), nil, none},
		{"chat with temperature 0 nested only", task("auto", "POST", "/v1/chat/completions", `{"x":{"temperature":0}}`), nil, none},
		{"chat whose last temperature is not 0", task("auto", "POST", "/v1/chat/completions", `{"temperature":0,"temperature":1}`), nil, none},
		{"chat body not JSON", task("auto", "POST", "/v1/chat/completions", `temperature=0`), nil, none},
		{"other POST", task("auto", "POST", "/search", `{"q":"x"}`), nil, none},
		{"PUT", task("auto", "PUT", "/v1/embeddings", embed), nil, none},
		{"DELETE", task("auto", "DELETE", "/x", ""), nil, none},
		{"HEAD", task("auto", "HEAD", "/x", ""), nil, none},
		// the upstream's cache setting
		{"always: any POST", task("always", "POST", "/search", `{"q":"x"}`), nil, all},
		{"always: warm chat", task("always", "POST", "/v1/chat/completions", chatWarm), nil, all},
		{"always: still not PATCH", task("always", "PATCH", "/x", `{}`), nil, none},
		{"never: not even GET", task("never", "GET", "/search", ""), nil, none},
		{"never: not embeddings", task("never", "POST", "/v1/embeddings", embed), nil, none},
		{"unknown upstream", task("nope", "GET", "/search", ""), nil, none},
		// the task's cache mode
		{"auto spelt out", withMode(task("auto", "GET", "/s", ""), messages.CacheAuto), nil, all},
		{"bypass", withMode(task("auto", "GET", "/s", ""), messages.CacheBypass), nil, none},
		{"refresh", withMode(task("auto", "GET", "/s", ""), messages.CacheRefresh), nil, Plan{Store: true, TTL: ttl}},
		{"no-store", withMode(task("auto", "GET", "/s", ""), messages.CacheNoStore), nil, Plan{Lookup: true, Coalesce: true}},
		{"unknown mode is bypass", withMode(task("auto", "GET", "/s", ""), "sometimes"), nil, none},
		{"refresh of an uncacheable task", withMode(task("auto", "POST", "/v1/chat/completions", chatWarm), messages.CacheRefresh), nil, none},
		// TTL
		{"task TTL", withTTL(task("auto", "GET", "/s", ""), 90*time.Second), nil, Plan{Lookup: true, Store: true, Coalesce: true, TTL: 90 * time.Second}},
		{"default_ttl", task("auto", "GET", "/s", ""), func(c *conf.Config) { c.Cache.DefaultTTL = 1.5 },
			Plan{Lookup: true, Store: true, Coalesce: true, TTL: 1500 * time.Millisecond}},
		{"no TTL without a store", withTTL(withMode(task("auto", "GET", "/s", ""), messages.CacheNoStore), time.Minute), nil, Plan{Lookup: true, Coalesce: true}},
		// the switches
		{"collaboration off", task("auto", "GET", "/s", ""), func(c *conf.Config) { c.EnableCollaboration = false },
			Plan{Lookup: true, Store: true, TTL: ttl}},
		{"advanced optimization off: coalescing only", task("auto", "GET", "/s", ""), func(c *conf.Config) { c.EnableAdvancedOptimization = false },
			Plan{Coalesce: true}},
		{"both off", task("auto", "GET", "/s", ""), func(c *conf.Config) { c.EnableAdvancedOptimization, c.EnableCollaboration = false, false }, none},
		{"refresh, advanced optimization off", withMode(task("auto", "GET", "/s", ""), messages.CacheRefresh),
			func(c *conf.Config) { c.EnableAdvancedOptimization = false }, none},
		{"never is not coalesced either", task("never", "GET", "/s", ""), nil, none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := planConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			got := PlanFor(&tc.task, cfg)
			if (got.Key != "") != (got.Lookup || got.Store || got.Coalesce) {
				t.Errorf("Key %q with Lookup %v, Store %v, Coalesce %v: want a key exactly when one is set", got.Key, got.Lookup, got.Store, got.Coalesce)
			}
			if got.Key != "" && got.Key != KeyOf(&tc.task, cfg.Cache.ShareAcrossKeys) {
				t.Errorf("Key %q, KeyOf %q", got.Key, KeyOf(&tc.task, cfg.Cache.ShareAcrossKeys))
			}
			got.Key = ""
			if got != tc.want {
				t.Errorf("PlanFor = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func withMode(t messages.Task, mode string) messages.Task {
	t.Cache = mode
	return t
}

func withTTL(t messages.Task, ttl time.Duration) messages.Task {
	t.CacheTTL = ttl
	return t
}

// TestKeyIgnoresSpellingButNotMeaning: bodies that differ only in member
// order or spacing share a key; a change to any part of the key gives
// another.
func TestKeyIgnoresSpellingButNotMeaning(t *testing.T) {
	base := messages.Task{
		Upstream: "auto", Method: http.MethodPost, Path: "/v1/chat/completions", Tenant: "t1",
		CacheNamespace: "ns", Body: []byte(chatT0),
	}
	key := KeyOf(&base, false)
	same := map[string]func(*messages.Task){
		"members reordered": func(t *messages.Task) {
			t.Body = []byte(`{"messages":[{"content":"hi","role":"user"}],"temperature":0,"model":"m"}`)
		},
		"whitespace": func(t *messages.Task) {
			t.Body = []byte("{\n  \"model\": \"m\",\n  \"temperature\": 0,\n  \"messages\": [ { \"role\": \"user\", \"content\": \"hi\" } ]\n}\n")
		},
		"method left empty is POST": func(t *messages.Task) { t.Method = "" },
		"what the key leaves out": func(t *messages.Task) {
			t.ID, t.Priority, t.Cache, t.CacheTTL, t.IdempotencyKey = "task_x", 2, messages.CacheRefresh, time.Minute, "idem"
			t.Header = map[string][]string{"X-Trace": {"1"}}
		},
	}
	for name, change := range same {
		c := base
		change(&c)
		if got := KeyOf(&c, false); got != key {
			t.Errorf("%s: key %q, want the base's %q", name, got, key)
		}
	}
	different := map[string]func(*messages.Task){
		"upstream":     func(t *messages.Task) { t.Upstream = "always" },
		"method":       func(t *messages.Task) { t.Method = http.MethodGet },
		"path":         func(t *messages.Task) { t.Path = "/v1/completions" },
		"query":        func(t *messages.Task) { t.Path += "?x=1" },
		"stream":       func(t *messages.Task) { t.Stream = true },
		"tenant":       func(t *messages.Task) { t.Tenant = "t2" },
		"no tenant":    func(t *messages.Task) { t.Tenant = "" },
		"namespace":    func(t *messages.Task) { t.CacheNamespace = "other" },
		"no namespace": func(t *messages.Task) { t.CacheNamespace = "" },
		"a string's content": func(t *messages.Task) {
			t.Body = []byte(`{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi "}]}`)
		},
		"a number's spelling": func(t *messages.Task) {
			t.Body = []byte(`{"model":"m","temperature":0.0,"messages":[{"role":"user","content":"hi"}]}`)
		},
		"array order": func(t *messages.Task) {
			t.Body = []byte(`{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"},{"role":"user","content":"hi"}]}`)
		},
		"raw body": func(t *messages.Task) { t.Body = []byte(`not json`) },
		"no body":  func(t *messages.Task) { t.Body = nil },
		// Length prefixes keep parts from running into each other.
		"parts shifted": func(t *messages.Task) { t.Tenant, t.CacheNamespace = "t1n", "s" },
	}
	seen := map[string]string{key: "base"}
	for name, change := range different {
		c := base
		change(&c)
		got := KeyOf(&c, false)
		if other, dup := seen[got]; dup {
			t.Errorf("%s: same key as %s (%q)", name, other, got)
		}
		seen[got] = name
	}
}

// TestKeyIsolatesTenants: without cache.share_across_keys two callers with
// different credentials never share an entry; with it they do, and the
// namespace still separates them.
func TestKeyIsolatesTenants(t *testing.T) {
	alice := messages.Task{Upstream: "auto", Method: http.MethodGet, Path: "/search?q=x", Tenant: "alice"}
	bob := alice
	bob.Tenant = "bob"
	cfg := planConfig()
	pa, pb := PlanFor(&alice, cfg), PlanFor(&bob, cfg)
	if pa.Key == "" || pa.Key == pb.Key {
		t.Errorf("share_across_keys = false: alice %q, bob %q; want different keys", pa.Key, pb.Key)
	}
	cfg.Cache.ShareAcrossKeys = true
	pa, pb = PlanFor(&alice, cfg), PlanFor(&bob, cfg)
	anon := alice
	anon.Tenant = ""
	if pa.Key == "" || pa.Key != pb.Key || pa.Key != PlanFor(&anon, cfg).Key {
		t.Errorf("share_across_keys = true: alice %q, bob %q, anonymous %q; want one key", pa.Key, pb.Key, PlanFor(&anon, cfg).Key)
	}
	bob.CacheNamespace = "bob's"
	if PlanFor(&bob, cfg).Key == pa.Key {
		t.Errorf("share_across_keys = true: a namespace does not separate entries")
	}
}

func TestKeyIsURLSafe(t *testing.T) {
	k := KeyOf(&messages.Task{Upstream: "auto", Path: "/v1/embeddings", Body: []byte(embed)}, false)
	if len(k) != 43 {
		t.Errorf("key %q: %d characters, want 43 (base64url SHA-256)", k, len(k))
	}
	for _, c := range k {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			t.Errorf("key %q has %q", k, c)
		}
	}
}

func BenchmarkPlanFor(b *testing.B) {
	cfg := planConfig()
	long := `{"model":"gpt-4o","temperature":0.7,"messages":[{"role":"system","content":"You are a research assistant that answers with sources."},` +
		`{"role":"user","content":"Compare three approaches to rate limiting an LLM gateway and say which adapts best to a provider's real capacity."}],"max_tokens":512}`
	for _, bc := range []struct {
		name string
		task messages.Task
		key  bool
	}{
		{"uncacheable chat", messages.Task{Upstream: "auto", Method: http.MethodPost, Path: "/v1/chat/completions", Body: []byte(long)}, false},
		{"cacheable chat", messages.Task{Upstream: "auto", Method: http.MethodPost, Path: "/v1/chat/completions", Tenant: "0123456789abcdef0123456789abcdef",
			Body: []byte(`{"model":"gpt-4o","temperature":0,` + long[len(`{"model":"gpt-4o","temperature":0.7,`):])}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if got := PlanFor(&bc.task, cfg).Key != ""; got != bc.key {
				b.Fatalf("cacheable = %v, want %v", got, bc.key)
			}
			b.ReportAllocs()
			for b.Loop() {
				PlanFor(&bc.task, cfg)
			}
		})
	}
}
