package conf

import (
	"errors"
	"strings"
	"testing"
)

// env returns a Lookup over m, so tests never touch the process environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

var noEnv = env(nil)

// fieldErrors asserts err is a non-empty FieldErrors and returns it.
func fieldErrors(t *testing.T, err error) FieldErrors {
	t.Helper()
	var fe FieldErrors
	if !errors.As(err, &fe) || len(fe) == 0 {
		t.Fatalf("error %v (%T) is not a non-empty FieldErrors", err, err)
	}
	return fe
}

// wantProblem asserts err reports key with a message containing each of
// want.
func wantProblem(t *testing.T, err error, key string, want ...string) FieldError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one about %s", key)
	}
	for _, e := range fieldErrors(t, err) {
		if e.Key != key {
			continue
		}
		for _, w := range want {
			if !strings.Contains(e.Error(), w) {
				t.Fatalf("error about %s = %q; want it to contain %q", key, e.Error(), w)
			}
		}
		return e
	}
	t.Fatalf("error %q names no key %s", err, key)
	return FieldError{}
}

// valid returns the defaults plus one upstream, a base for rule tests.
func valid() *Config {
	c := Default()
	u := NewUpstream("http://127.0.0.1:8001")
	u.Models = []string{"sim-model"}
	c.Upstreams["sim"] = u
	c.DefaultUpstream = "sim"
	return c
}
