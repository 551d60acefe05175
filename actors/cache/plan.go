package cache

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/jsonscan"
	"github.com/deer-runtime/deer/messages"
)

// Plan is how one task uses the cache and coalescing. Key is set exactly
// when one of Lookup, Store and Coalesce is.
type Plan struct {
	Key      string        // "" when the task is not cacheable: no lookup, no store, no coalescing
	Lookup   bool          // may be answered from the cache
	Store    bool          // a 2xx answer is stored
	Coalesce bool          // may share an identical call in flight (enable_collaboration)
	TTL      time.Duration // the answer's lifetime when Store: Task.CacheTTL, else cache.default_ttl
}

// PlanFor decides how t uses the cache and coalescing under cfg (SPEC §5):
//   - Cacheable: GET and POST only, never on an upstream with cache =
//     "never". With "auto" (the default): GETs, POSTs to a path ending in
//     /embeddings, and completions (/chat/completions, /completions) whose
//     top-level temperature is explicitly 0, since a missing temperature is
//     OpenAI's default 1 and such answers vary. With "always": any POST too
//     (web search through /proxy). An unknown upstream is not cacheable.
//   - Task.Cache: auto (or "") looks up, stores and coalesces; refresh
//     stores without looking up or coalescing, as its point is a fresh
//     call; no-store looks up and coalesces but does not store; bypass,
//     and any unknown mode, does none of them.
//   - enable_advanced_optimization off turns Lookup and Store off;
//     enable_collaboration off turns Coalesce off.
//
// Cacheability is decided from the method, the path and at most a byte
// scan for the temperature before the key is computed, so the common
// uncacheable chat completion costs no canonicalisation or hashing.
func PlanFor(t *messages.Task, cfg *conf.Config) Plan {
	cacheOn, collab := cfg.EnableAdvancedOptimization, cfg.EnableCollaboration
	var p Plan
	switch t.Cache {
	case messages.CacheAuto, "":
		p = Plan{Lookup: cacheOn, Store: cacheOn, Coalesce: collab}
	case messages.CacheRefresh:
		p = Plan{Store: cacheOn}
	case messages.CacheNoStore:
		p = Plan{Lookup: cacheOn, Coalesce: collab}
	default: // bypass, or a mode this version does not know: the safe reading
		return Plan{}
	}
	if !(p.Lookup || p.Store || p.Coalesce) || !cacheable(t, cfg) {
		return Plan{}
	}
	if p.Store {
		p.TTL = t.CacheTTL
		if p.TTL <= 0 {
			p.TTL = conf.Seconds(cfg.Cache.DefaultTTL)
		}
	}
	p.Key = KeyOf(t, cfg.Cache.ShareAcrossKeys)
	return p
}

// cacheable reports whether t's answer may be shared with an identical
// task: the rules of PlanFor's first point.
func cacheable(t *messages.Task, cfg *conf.Config) bool {
	up, ok := cfg.Upstreams[t.Upstream]
	if !ok || up.Cache == "never" {
		return false
	}
	switch method(t) {
	case http.MethodGet:
		return true
	case http.MethodPost:
		if up.Cache == "always" {
			return true
		}
		path, _, _ := strings.Cut(t.Path, "?")
		switch {
		case strings.HasSuffix(path, "/embeddings"):
			return true
		case strings.HasSuffix(path, "/completions"): // and /chat/completions
			v, ok := jsonscan.Find(t.Body, "temperature")
			return ok && isZero(v)
		}
	}
	return false
}

// method is the task's HTTP method; a task without one is a POST.
func method(t *messages.Task) string {
	if t.Method == "" {
		return http.MethodPost
	}
	return t.Method
}

// isZero reports whether v, a JSON value, is a number equal to zero: 0,
// -0, 0.0, 0e5, 0.000E-3. A number is zero exactly when every digit of its
// mantissa is 0, whatever its exponent.
func isZero(v []byte) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	if len(v) == 0 || v[0] != '0' {
		return false // not a number (or a non-zero one: JSON has no leading zeros)
	}
	for _, c := range v {
		switch {
		case c == 'e' || c == 'E':
			return true
		case c != '0' && c != '.':
			return false
		}
	}
	return true
}

// keyVersion starts every hashed key: changing what goes into a key (or
// how) bumps it, so that entries stored under the old derivation, in L3
// across a restart, are never read as answers to different requests.
const keyVersion = 1

// keyBufs reuses the buffers keys are hashed from: a body's canonical form
// is about its own size, and the router computes keys on its hot path.
var keyBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledKeyBuf keeps the buffer of an occasional huge body (up to
// server.max_body_bytes) from staying in the pool.
const maxPooledKeyBuf = 256 << 10

// KeyOf is t's cache key: a base64url SHA-256 over the upstream, method,
// path (with query), whether the answer is streamed, the tenant (unless
// shareAcrossKeys), the cache namespace and the body in canonical form
// (jsonscan.AppendCanonical: members sorted, spacing removed, literals
// kept; a body that is not JSON as its raw bytes). Each part is
// length-prefixed, so no two different tasks hash the same bytes. It does
// not check that t is cacheable: PlanFor does.
func KeyOf(t *messages.Task, shareAcrossKeys bool) string {
	bp := keyBufs.Get().(*[]byte)
	b := append((*bp)[:0], keyVersion)
	b = appendPart(b, t.Upstream)
	b = appendPart(b, method(t))
	b = appendPart(b, t.Path)
	if t.Stream {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	tenant := t.Tenant
	if shareAcrossKeys {
		tenant = ""
	}
	b = appendPart(b, tenant)
	b = appendPart(b, t.CacheNamespace)
	// The body is last and needs no length, but does need its kind: raw
	// bytes that are not valid JSON can never equal a canonical form, but
	// the marker keeps that from being something to reason about.
	if out, ok := jsonscan.AppendCanonical(append(b, 'j'), t.Body); ok {
		b = out
	} else {
		b = append(append(b, 'r'), t.Body...)
	}
	sum := sha256.Sum256(b)
	if cap(b) <= maxPooledKeyBuf {
		*bp = b
		keyBufs.Put(bp)
	}
	var key [43]byte // base64 of 32 bytes, unpadded
	base64.RawURLEncoding.Encode(key[:], sum[:])
	return string(key[:])
}

func appendPart(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
