package conf

import (
	"reflect"
	"strings"
	"testing"
)

// TestRateLimitOverrideMirrorsRateLimit: [upstreams.NAME.rate_limit] takes
// exactly rate_limit's keys, and RateLimitFor applies each one it is given
// (no key read and then ignored).
func TestRateLimitOverrideMirrorsRateLimit(t *testing.T) {
	rt, ot := reflect.TypeFor[RateLimit](), reflect.TypeFor[RateLimitOverride]()
	if rt.NumField() != ot.NumField() {
		t.Fatalf("RateLimit has %d fields, RateLimitOverride %d", rt.NumField(), ot.NumField())
	}
	for i := range rt.NumField() {
		rf, of := rt.Field(i), ot.Field(i)
		if rf.Name != of.Name || tagName(rf) != tagName(of) || of.Type != reflect.PointerTo(rf.Type) {
			t.Errorf("field %d: %s %s %s vs %s %s %s", i, rf.Name, tagName(rf), rf.Type, of.Name, tagName(of), of.Type)
		}
		// Only this key overridden: RateLimitFor differs from rate_limit
		// in it alone.
		c := valid()
		u := c.Upstreams["sim"]
		v := reflect.New(rf.Type)
		switch rf.Type.Kind() {
		case reflect.Float64:
			v.Elem().SetFloat(12345)
		case reflect.Int:
			v.Elem().SetInt(12345)
		}
		reflect.ValueOf(&u.RateLimit).Elem().Field(i).Set(v)
		c.Upstreams["sim"] = u
		got, want := c.RateLimitFor("sim"), c.RateLimit
		reflect.ValueOf(&want).Elem().Field(i).Set(v.Elem())
		if got != want {
			t.Errorf("%s overridden: RateLimitFor = %+v, want %+v", tagName(rf), got, want)
		}
		if c.RateLimitFor("other") != c.RateLimit {
			t.Errorf("an upstream without overrides does not get rate_limit")
		}
	}
}

func TestUpstreamRateLimitFromFile(t *testing.T) {
	path := writeConfig(t, `[rate_limit]
min_rate = 2.0
burst_allowance = 30

[upstreams.sim]
base_url = "http://127.0.0.1:8001"
[upstreams.sim.rate_limit]
initial_rate = 20000
max_rate = 50000.0
burst_allowance = 1000

[upstreams.other]
base_url = "http://127.0.0.1:8002"
`)
	c, src, err := LoadWithSource(LoadOptions{ConfigPath: path, Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := RateLimit{InitialRate: 20000, MaxRate: 50000, MinRate: 2, AdaptationFactor: 1.2, WindowSize: 60, BurstAllowance: 1000}
	if got := c.RateLimitFor("sim"); got != want {
		t.Errorf("sim: %+v, want %+v", got, want)
	}
	if got := c.RateLimitFor("other"); got != c.RateLimit {
		t.Errorf("other: %+v, want rate_limit %+v", got, c.RateLimit)
	}
	if got := src["upstreams.sim.rate_limit.max_rate"]; got != "file "+path {
		t.Errorf("source of upstreams.sim.rate_limit.max_rate = %q", got)
	}

	// Encoded (--print-config) and loaded back: the same overrides, and
	// no empty table for the upstream without any.
	data, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "[upstreams.other.rate_limit]") || !strings.Contains(string(data), "[upstreams.sim.rate_limit]") {
		t.Errorf("encoded:\n%s", data)
	}
	back, err := Load(LoadOptions{ConfigPath: writeConfig(t, string(data)), Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back.Upstreams, c.Upstreams)
	}

	// A clone shares no override with the original.
	n := c.Clone()
	*n.Upstreams["sim"].RateLimit.MaxRate = 1
	if *c.Upstreams["sim"].RateLimit.MaxRate != 50000 {
		t.Error("Clone shares an upstream's rate_limit override")
	}
}

func TestUpstreamRateLimitErrors(t *testing.T) {
	base := "[upstreams.sim]\nbase_url = \"http://127.0.0.1:8001\"\n[upstreams.sim.rate_limit]\n"
	tests := []struct {
		name, text string
		key, want  string
	}{
		{"range", "max_rate = 2e6\n", "upstreams.sim.rate_limit.max_rate",
			"upstreams.sim.rate_limit.max_rate (2000000) must be > 0 and <= 1000000 requests/s"},
		{"burst", "burst_allowance = 0\n", "upstreams.sim.rate_limit.burst_allowance",
			"upstreams.sim.rate_limit.burst_allowance (0) must be between 1 and 10000000"},
		{"factor", "adaptation_factor = 1.0\n", "upstreams.sim.rate_limit.adaptation_factor",
			"upstreams.sim.rate_limit.adaptation_factor (1) must be > 1"},
		// Against a top-level value: reported under the upstream's key,
		// naming where each value comes from.
		{"below the top-level initial_rate", "max_rate = 5.0\n", "upstreams.sim.rate_limit.max_rate",
			"rate_limit.initial_rate (10) must be <= upstreams.sim.rate_limit.max_rate (5)"},
		{"both own", "min_rate = 50.0\nmax_rate = 40.0\n", "upstreams.sim.rate_limit.min_rate",
			"upstreams.sim.rate_limit.min_rate (50) must be <= upstreams.sim.rate_limit.max_rate (40)"},
		{"unknown key", "max_rat = 5.0\n", "upstreams.sim.rate_limit.max_rat",
			":4: unknown key upstreams.sim.rate_limit.max_rat (did you mean upstreams.sim.rate_limit.max_rate?)"},
		{"type", "burst_allowance = 10.5\n", "upstreams.sim.rate_limit.burst_allowance",
			":4:19: upstreams.sim.rate_limit.burst_allowance: expected an integer, got the float 10.5"},
		{"not a table", "", "upstreams.sim.rate_limit", "expected a table, got the integer 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := base + tt.text
			if tt.text == "" {
				text = "[upstreams.sim]\nbase_url = \"http://127.0.0.1:8001\"\nrate_limit = 5\n"
			}
			_, err := Load(LoadOptions{ConfigPath: writeConfig(t, text), Lookup: noEnv})
			wantProblem(t, err, tt.key, tt.want)
			if n := len(fieldErrors(t, err)); n != 1 {
				t.Errorf("%d problems, want 1: %v", n, err)
			}
		})
	}

	// A top-level problem is reported once, under the top-level key, not
	// again for each upstream that inherits it.
	_, err := Load(LoadOptions{ConfigPath: writeConfig(t, "[rate_limit]\nburst_allowance = 0\n"+base+"max_rate = 50.0\n"), Lookup: noEnv})
	if fe := fieldErrors(t, err); len(fe) != 1 || fe[0].Key != "rate_limit.burst_allowance" {
		t.Errorf("problems %v, want rate_limit.burst_allowance alone", fe)
	}
}

// TestPatchUpstreamRateLimit: POST /config may change an upstream's
// rate_limit table (live), but nothing else of an upstream.
func TestPatchUpstreamRateLimit(t *testing.T) {
	c := valid()
	next, err := c.Patch([]byte(`{"upstreams": {"sim": {"rate_limit": {"max_rate": 500, "burst_allowance": 100}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := next.RateLimitFor("sim"); r.MaxRate != 500 || r.BurstAllowance != 100 || r.MinRate != 1 {
		t.Errorf("after the patch: %+v", r)
	}
	if c.Upstreams["sim"].RateLimit != (RateLimitOverride{}) {
		t.Error("Patch modified its receiver")
	}
	if !RequiresRestart("upstreams.sim.timeout") || !RequiresRestart("upstreams") || RequiresRestart("upstreams.sim.rate_limit.max_rate") {
		t.Error("RequiresRestart: an upstream's rate_limit keys are live, its other fields are not")
	}

	for _, tt := range []struct{ patch, key, want string }{
		{`{"upstreams": {"sim": {"rate_limit": {"max_rate": 0.5}}}}`, "upstreams.sim.rate_limit.max_rate",
			"rate_limit.min_rate (1) must be <= upstreams.sim.rate_limit.max_rate (0.5)"},
		{`{"upstreams": {"sim": {"rate_limit": {"max_rate": "fast"}}}}`, "upstreams.sim.rate_limit.max_rate", "expected a number"},
		{`{"upstreams": {"sim": {"rate_limit": {"rate": 5}}}}`, "upstreams.sim.rate_limit.rate", "unknown key"},
		{`{"upstreams": {"sim": {"timeout": 5, "rate_limit": {"max_rate": 50}}}}`, "upstreams", "requires a restart"},
		{`{"upstreams": {"new": {"rate_limit": {"max_rate": 50}}}}`, "upstreams", "requires a restart"},
	} {
		_, err := next.Patch([]byte(tt.patch))
		if e := wantProblem(t, err, tt.key, tt.want); fieldErrors(t, err)[0] != e {
			t.Errorf("%s: first problem %v, want %v", tt.patch, fieldErrors(t, err)[0], e)
		}
	}
}
