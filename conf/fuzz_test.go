package conf

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"regexp"
	"testing"
)

func FuzzLoadTOML(f *testing.F) {
	for _, p := range []string{"deer.toml", "profiles/production.toml", "profiles/development.toml", "profiles/test.toml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		// Without comments: small inputs mutate and minimize faster.
		f.Add(regexp.MustCompile(`(?m)^#.*\n|^\n`).ReplaceAll(data, nil))
	}
	for _, s := range []string{
		"", "[cache\n", "debug_mode = \"yes\"\n", "[parallel_execution]\nmax_workers = 10.0\n",
		"[rate_limit]\nmin_rate = nan\nmax_rate = inf\n", "[upstreams.\"a b\"]\nbase_url = \"x\"\nmodels = []\n",
		"[upstreams]\nx = 5\n", "upstreams = []\n", "[[upstreams]]\n", "[connection_pool]\nMAX_CONNECTIONS = 1\n",
		"[upstreams.x.y]\nz = 1\n", "a.b.c.d = 1\n", "[upstreams.x.rate_limit]\nmax_rate = 5\nburst_allowance = 1.5\n",
		"[upstreams.x]\nrate_limit = { max_rate = nan, colour = 1 }\n", "[server]\naddr = \"\\u0000:1\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if err := decodeTOML(c, Source{}, data, "fuzz.toml", "file fuzz.toml"); err != nil {
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, not FieldErrors", err, err)
			}
			return
		}
		validErr := c.Validate() // must not panic, whatever was decoded
		enc, err := c.TOML()
		if err != nil {
			t.Fatalf("TOML: %v", err)
		}
		back := Default()
		if err := decodeTOML(back, Source{}, enc, "enc.toml", "file enc.toml"); err != nil {
			t.Fatalf("encoded config does not load: %v\n%s", err, enc)
		}
		enc2, err := back.TOML()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the encoding:\n%s\n---\n%s", enc, enc2)
		}
		// A valid config has no NaN, so it must come back equal.
		if validErr == nil && !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip differs:\n%+v\n%+v", c, back)
		}
	})
}

func FuzzEnv(f *testing.F) {
	f.Add("20", "1.0", "true", "127.0.0.1:8000", "lru")
	f.Add("10.0", "NaN", "maybe", "localhost", "LRU")
	f.Add("-1", "1e999", "", ":0", "")
	f.Add(" 7 ", "0x1p3", "On", "[::1]:65535", "fifo\x00")
	f.Fuzz(func(t *testing.T, workers, minRate, debug, addr, policy string) {
		lookup := env(map[string]string{
			"DEER_MAX_WORKERS":           workers,
			"DEER_MIN_RATE":              minRate,
			"DEER_DEBUG_MODE":            debug,
			"DEER_HTTP_ADDR":             addr,
			"DEER_CACHE_EVICTION_POLICY": policy,
		})
		c, err := Load(LoadOptions{Lookup: lookup})
		if err != nil {
			for _, e := range fieldErrors(t, err) {
				if e.Key == "" || e.Env == "" {
					t.Fatalf("problem %q names no key or env var", e.Error())
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load succeeded but Validate fails: %v", err)
		}
		enc, err := c.TOML()
		if err != nil {
			t.Fatal(err)
		}
		back := Default()
		if err := decodeTOML(back, Source{}, enc, "enc.toml", "file enc.toml"); err != nil {
			t.Fatalf("%v\n%s", err, enc)
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip differs:\n%+v\n%+v", c, back)
		}
	})
}

func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"batch_processing": {"batch_size": 15}}`,
		`{"rate_limit": {"min_rate": 5, "max_rate": 2}}`,
		`{"parallel_execution": {"max_workers": "five"}}`,
		`{"parallel_execution": {"max_workers": 10.5}}`,
		`{"server": {"addr": "0.0.0.0:1"}}`,
		`{"upstreams": {"sim": {"models": ["x"]}}}`,
		`{"upstreams": {"sim": {"timeout": 60}}}`,
		`{"cache": null}`, `[]`, ``, `{} {}`, `{"a":`, `{"monitoring": {"export_interval": 1e-300}}`,
		`{"server": {"admin_token": "<redacted>"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := shipped(t)
		before := c.Clone()
		next, err := c.Patch(body)
		if !reflect.DeepEqual(c, before) {
			t.Fatal("Patch modified its receiver")
		}
		if err != nil {
			fieldErrors(t, err)
			if next != nil {
				t.Fatal("Patch returned a config with its error")
			}
			return
		}
		if err := next.Validate(); err != nil {
			t.Fatalf("patched config does not validate: %v", err)
		}
		if errs := restartChanges(c, next); len(errs) > 0 {
			t.Fatalf("Patch changed a restart-only key: %v", errs)
		}
		next.Upstreams["sim"].Models[0] = "changed"
		if c.Upstreams["sim"].Models[0] == "changed" {
			t.Fatal("the patched config shares memory with its receiver")
		}
	})
}
