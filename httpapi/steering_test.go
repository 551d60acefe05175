package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
)

// TestReadSteering: each steering header's valid values reach the steering
// (and so the task), and each invalid one is refused naming its header.
func TestReadSteering(t *testing.T) {
	cfg := conf.Default()
	def := steering{priority: 1, cache: "auto"}
	for _, tc := range []struct {
		name   string
		header []string
		want   steering
		field  string // the header a refusal names; "" when accepted
	}{
		{"no headers", nil, def, ""},
		{"cache no-store", []string{"X-Deer-Cache", "no-store"}, steering{priority: 1, cache: "no-store"}, ""},
		{"cache refresh, any case", []string{"X-Deer-Cache", " Refresh "}, steering{priority: 1, cache: "refresh"}, ""},
		{"cache unknown", []string{"X-Deer-Cache", "no-cache"}, def, "X-Deer-Cache"},
		{"ttl seconds", []string{"X-Deer-Cache-TTL", "90"}, steering{priority: 1, cache: "auto", cacheTTL: 90 * time.Second}, ""},
		{"ttl fraction", []string{"X-Deer-Cache-TTL", "1.5"}, steering{priority: 1, cache: "auto", cacheTTL: 1500 * time.Millisecond}, ""},
		{"ttl exponent", []string{"X-Deer-Cache-TTL", "2e3"}, steering{priority: 1, cache: "auto", cacheTTL: 2000 * time.Second}, ""},
		{"ttl 365 days", []string{"X-Deer-Cache-TTL", "31536000"}, steering{priority: 1, cache: "auto", cacheTTL: 365 * 24 * time.Hour}, ""},
		{"ttl zero", []string{"X-Deer-Cache-TTL", "0"}, def, "X-Deer-Cache-TTL"},
		{"ttl negative", []string{"X-Deer-Cache-TTL", "-5"}, def, "X-Deer-Cache-TTL"},
		{"ttl rounds to zero", []string{"X-Deer-Cache-TTL", "1e-10"}, def, "X-Deer-Cache-TTL"},
		{"ttl over a year", []string{"X-Deer-Cache-TTL", "31536001"}, def, "X-Deer-Cache-TTL"},
		{"ttl a duration", []string{"X-Deer-Cache-TTL", "10s"}, def, "X-Deer-Cache-TTL"},
		{"ttl NaN", []string{"X-Deer-Cache-TTL", "NaN"}, def, "X-Deer-Cache-TTL"},
		{"ttl Inf", []string{"X-Deer-Cache-TTL", "Inf"}, def, "X-Deer-Cache-TTL"},
		{"ttl hex", []string{"X-Deer-Cache-TTL", "0x10"}, def, "X-Deer-Cache-TTL"},
		{"ttl empty", []string{"X-Deer-Cache-TTL", ""}, def, "X-Deer-Cache-TTL"},
		{"ttl twice", []string{"X-Deer-Cache-TTL", "5", "X-Deer-Cache-TTL", "6"}, def, "X-Deer-Cache-TTL"},
		{"namespace", []string{"X-Deer-Cache-Namespace", "team-a/run:42"}, steering{priority: 1, cache: "auto", namespace: "team-a/run:42"}, ""},
		{"namespace 200", []string{"X-Deer-Cache-Namespace", strings.Repeat("n", 200)}, steering{priority: 1, cache: "auto", namespace: strings.Repeat("n", 200)}, ""},
		{"namespace 201", []string{"X-Deer-Cache-Namespace", strings.Repeat("n", 201)}, def, "X-Deer-Cache-Namespace"},
		{"namespace empty", []string{"X-Deer-Cache-Namespace", ""}, def, "X-Deer-Cache-Namespace"},
		{"namespace space", []string{"X-Deer-Cache-Namespace", "a b"}, def, "X-Deer-Cache-Namespace"},
		{"namespace not ASCII", []string{"X-Deer-Cache-Namespace", "équipe"}, def, "X-Deer-Cache-Namespace"},
		{"namespace twice", []string{"X-Deer-Cache-Namespace", "a", "X-Deer-Cache-Namespace", "b"}, def, "X-Deer-Cache-Namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tc.header); i += 2 {
				h.Add(tc.header[i], tc.header[i+1])
			}
			st, ierr := readSteering(h, cfg)
			switch {
			case tc.field != "" && ierr == nil:
				t.Fatalf("accepted %v as %+v; want a refusal naming %s", tc.header, st, tc.field)
			case tc.field != "":
				if ierr.status != http.StatusBadRequest || ierr.field != tc.field || !strings.Contains(ierr.message, tc.field) {
					t.Errorf("refusal %+v; want 400 naming %s", ierr, tc.field)
				}
			case ierr != nil:
				t.Fatalf("refused %v: %+v", tc.header, ierr)
			case st != tc.want:
				t.Errorf("steering %+v, want %+v", st, tc.want)
			}
		})
	}
}

// TestTenantIsAHashOfTheCredential: the same Authorization gives the same
// tenant, another gives another, none gives none, and the credential
// itself is nowhere in it.
func TestTenantIsAHashOfTheCredential(t *testing.T) {
	tenant := func(auth ...string) string {
		h := http.Header{}
		for _, a := range auth {
			h.Add("Authorization", a)
		}
		st, ierr := readSteering(h, conf.Default())
		if ierr != nil {
			t.Fatalf("refused: %+v", ierr)
		}
		return st.tenant
	}
	a, a2, b := tenant("Bearer sk-alice"), tenant("Bearer sk-alice"), tenant("Bearer sk-bob")
	if a == "" || a != a2 || a == b {
		t.Errorf("tenants alice %q, alice again %q, bob %q: want equal for alice, different for bob", a, a2, b)
	}
	if len(a) != 32 || strings.Contains(a, "alice") || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("tenant %q: want 32 hex digits that do not hold the credential", a)
	}
	if none := tenant(); none != "" {
		t.Errorf("no Authorization: tenant %q, want none", none)
	}
	if two := tenant("Bearer sk-alice", "Bearer sk-bob"); two == a || two == b {
		t.Errorf("two Authorization values share a tenant with one of them")
	}
}
