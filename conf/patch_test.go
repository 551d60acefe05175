package conf

import (
	"encoding/json"
	"reflect"
	"testing"
)

func shipped(t testing.TB) *Config {
	t.Helper()
	c, err := Load(LoadOptions{ConfigPath: "deer.toml", Lookup: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	c.Server.AdminToken = "tok"
	return c
}

func TestPatchMerges(t *testing.T) {
	c := shipped(t)
	before := c.Clone()
	next, err := c.Patch([]byte(`{"batch_processing": {"batch_size": 15}, "rate_limit": {"max_rate": 250.5, "min_rate": 2},
		"debug_mode": true, "cache": {"eviction_policy": "lfu", "share_across_keys": true}, "monitoring": {"push_url": "http://127.0.0.1:9091/m"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := before.Clone()
	want.BatchProcessing.BatchSize = 15
	want.RateLimit.MaxRate = 250.5
	want.RateLimit.MinRate = 2
	want.DebugMode = true
	want.Cache.EvictionPolicy = "lfu"
	want.Cache.ShareAcrossKeys = true
	want.Monitoring.PushURL = "http://127.0.0.1:9091/m"
	if !reflect.DeepEqual(next, want) {
		t.Errorf("patched:\n got %+v\nwant %+v", next, want)
	}
	if !reflect.DeepEqual(c, before) {
		t.Error("Patch modified its receiver")
	}
}

// The breaker's failure-rate keys change live like the rest of
// error_recovery.
func TestPatchBreakerWindow(t *testing.T) {
	c := shipped(t)
	next, err := c.Patch([]byte(`{"error_recovery": {"failure_window": 30, "failure_rate_threshold": 0.25}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := c.Clone()
	want.ErrorRecovery.FailureWindow = 30
	want.ErrorRecovery.FailureRateThreshold = 0.25
	if !reflect.DeepEqual(next, want) {
		t.Errorf("patched:\n got %+v\nwant %+v", next.ErrorRecovery, want.ErrorRecovery)
	}
}

// TestPatchAcceptsGetConfig posts back what GET /config shows: restart-only
// keys sent unchanged (upstreams, the redacted token) are not changes.
func TestPatchAcceptsGetConfig(t *testing.T) {
	c := shipped(t)
	body, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.Patch(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if !reflect.DeepEqual(next, c) {
		t.Errorf("posting GET /config back changed it:\n got %+v\nwant %+v", next, c)
	}
}

func TestPatchRefuses(t *testing.T) {
	tests := []struct {
		body string
		key  string // "" for a problem with the body as a whole
		want string // the first problem's whole message
	}{
		{``, "", `empty body: expected a JSON object such as {"batch_processing": {"batch_size": 15}}`},
		{` `, "", `empty body: expected a JSON object such as {"batch_processing": {"batch_size": 15}}`},
		{`[1]`, "", `expected a JSON object of settings, got an array`},
		{`"x"`, "", `expected a JSON object of settings, got "x"`},
		{`null`, "", `expected a JSON object of settings, got null`},
		{`{"debug_mode": true} x`, "", `invalid JSON: unexpected data after the top-level object`},
		{`{"debug_mode": true}{}`, "", `invalid JSON: unexpected data after the top-level object`},
		{`{"debug_mode": tru}`, "", `invalid JSON: invalid character '}' in literal true (expecting 'e')`},
		{`{"batch_processing": {"batch_sizee": 15}}`, "batch_processing.batch_sizee", `unknown key batch_processing.batch_sizee`},
		{`{"Batch_Processing": {"batch_size": 15}}`, "Batch_Processing", `unknown key Batch_Processing`},
		{`{"nope": 1}`, "nope", `unknown key nope`},
		{`{"upstreams": {"sim": {"api_key": "x"}}}`, "upstreams.sim.api_key", `unknown key upstreams.sim.api_key`},
		{`{"parallel_execution": {"max_workers": "five"}}`, "parallel_execution.max_workers", `parallel_execution.max_workers: expected an integer, got "five"`},
		{`{"parallel_execution": {"max_workers": 10.5}}`, "parallel_execution.max_workers", `parallel_execution.max_workers: expected an integer, got 10.5`},
		{`{"parallel_execution": {"max_workers": 10.0}}`, "parallel_execution.max_workers", `parallel_execution.max_workers: expected an integer, got 10.0`},
		{`{"parallel_execution": {"max_workers": null}}`, "parallel_execution.max_workers", `parallel_execution.max_workers: expected an integer, got null`},
		{`{"parallel_execution": {"max_workers": 1e400}}`, "parallel_execution.max_workers", `parallel_execution.max_workers: expected an integer, got 1e400`},
		{`{"server": {"max_body_bytes": 99999999999999999999}}`, "server.max_body_bytes", `server.max_body_bytes: 99999999999999999999 is out of range`},
		{`{"rate_limit": {"max_rate": 1e400}}`, "rate_limit.max_rate", `rate_limit.max_rate: 1e400 is out of range`},
		{`{"rate_limit": {"max_rate": "100"}}`, "rate_limit.max_rate", `rate_limit.max_rate: expected a number, got "100"`},
		{`{"debug_mode": "true"}`, "debug_mode", `debug_mode: expected true or false, got "true"`},
		{`{"debug_mode": 1}`, "debug_mode", `debug_mode: expected true or false, got 1`},
		{`{"cache": {"eviction_policy": 1}}`, "cache.eviction_policy", `cache.eviction_policy: expected a string, got 1`},
		{`{"cache": {"share_across_keys": "yes"}}`, "cache.share_across_keys", `cache.share_across_keys: expected true or false, got "yes"`},
		{`{"cache": null}`, "cache", `cache: expected an object, got null`},
		{`{"cache": []}`, "cache", `cache: expected an object, got an array`},
		{`{"batch_processing": {"batch_size": 0}}`, "batch_processing.batch_size", `batch_processing.batch_size (0) must be between 1 and 10000`},
		{`{"parallel_execution": {"max_workers": 20000}}`, "parallel_execution.max_workers", `parallel_execution.max_workers (20000) must be between 1 and 10000`},
		{`{"error_recovery": {"failure_rate_threshold": 0}}`, "error_recovery.failure_rate_threshold", `error_recovery.failure_rate_threshold (0) must be > 0 and <= 1`},
		{`{"error_recovery": {"failure_window": -1}}`, "error_recovery.failure_window", `error_recovery.failure_window (-1) must be > 0 and <= 31536000 seconds (365 days)`},
		// The client sent max_rate: the error is reported under it.
		{`{"rate_limit": {"max_rate": 0.5}}`, "rate_limit.max_rate", `rate_limit.min_rate (1) must be <= rate_limit.max_rate (0.5)`},
		{`{"server": {"addr": "0.0.0.0:9000"}}`, "server.addr", `server.addr cannot change while deerd runs: requires a restart`},
		{`{"server": {"admin_token": "other"}}`, "server.admin_token", `server.admin_token cannot change while deerd runs: requires a restart`},
		{`{"cache": {"l3_path": "/tmp/x"}}`, "cache.l3_path", `cache.l3_path cannot change while deerd runs: requires a restart`},
		{`{"upstreams": {"sim": {"timeout": 5}}}`, "upstreams", `upstreams cannot change while deerd runs: requires a restart`},
		{`{"upstreams": {"new": {"base_url": "http://127.0.0.1:9"}}}`, "upstreams", `upstreams cannot change while deerd runs: requires a restart`},
		{`{"upstreams": {"sim": {"models": ["a", 1]}}}`, "upstreams.sim.models[1]", `upstreams.sim.models[1]: expected a string, got 1`},
		{`{"upstreams": {"sim": {"models": null}}}`, "upstreams.sim.models", `upstreams.sim.models: expected an array of strings, got null`},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			c := shipped(t)
			before := c.Clone()
			next, err := c.Patch([]byte(tt.body))
			if next != nil {
				t.Errorf("Patch returned a config with its error")
			}
			fe := fieldErrors(t, err)
			if fe[0].Key != tt.key || fe[0].Error() != tt.want {
				t.Errorf("first problem: key %q, %q\nwant key %q, %q", fe[0].Key, fe[0].Error(), tt.key, tt.want)
			}
			if !reflect.DeepEqual(c, before) {
				t.Error("Patch modified its receiver")
			}
		})
	}
}

func TestPatchUnchangedRestartKeys(t *testing.T) {
	c := shipped(t)
	for _, body := range []string{
		`{"server": {"addr": "127.0.0.1:8000", "admin_token": "tok"}}`,
		`{"server": {"admin_token": "<redacted>"}}`,
		`{"cache": {"l3_path": "./data/cache"}}`,
		`{"upstreams": {}}`,
		`{"upstreams": {"sim": {"timeout": 60}}}`,
	} {
		if _, err := c.Patch([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	// Without a token, the placeholder would set one.
	c.Server.AdminToken = ""
	_, err := c.Patch([]byte(`{"server": {"admin_token": "<redacted>"}}`))
	wantProblem(t, err, "server.admin_token", "requires a restart")
}
