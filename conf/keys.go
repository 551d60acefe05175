package conf

import (
	"reflect"
	"slices"
	"strings"
)

// field is one settable leaf of Config outside [upstreams.NAME]: its dotted
// key (the TOML path, the JSON path of /config and the Source key) and where
// it lives in the struct. Derived from the struct tags, so it cannot drift
// from them; tests walk it to check that every key has an env var, a row
// in docs/configuration.md and a line in conf/deer.toml.
type field struct {
	key   string
	index []int
	kind  reflect.Kind
}

func (f field) in(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index)
}

var (
	fields      = collectFields(reflect.TypeFor[Config](), "", nil)
	fieldsByKey = func() map[string]field {
		m := make(map[string]field, len(fields))
		for _, f := range fields {
			m[f.key] = f
		}
		return m
	}()
)

func collectFields(t reflect.Type, prefix string, index []int) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name := tagName(sf)
		if name == "" || name == "upstreams" {
			continue
		}
		idx := append(slices.Clone(index), i)
		if sf.Type.Kind() == reflect.Struct {
			out = append(out, collectFields(sf.Type, prefix+name+".", idx)...)
			continue
		}
		out = append(out, field{key: prefix + name, index: idx, kind: sf.Type.Kind()})
	}
	return out
}

func tagName(sf reflect.StructField) string {
	name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
	return name
}

// Keys returns the dotted key of every setting outside [upstreams.NAME], in
// declaration order: "enable_advanced_optimization", …, "monitoring.push_url".
func Keys() []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// restartOnly are the keys a running deerd cannot change: the listener, the
// admin credential, the open L3 store, the cluster's Redis and the upstream set (actors are named
// after upstreams and their pools, limiters and breakers built from them).
var restartOnly = []string{"server.addr", "server.admin_token", "cache.l3_path", "cache.l3_backend", "cluster.redis_url", "upstreams"}

// RequiresRestart reports whether key (a dotted key, or "upstreams" and
// anything under it) cannot be changed through POST /config. An upstream's
// rate_limit table can: the limiter takes it as it takes rate_limit.
func RequiresRestart(key string) bool {
	if key == "upstreams" || strings.HasPrefix(key, "upstreams.") {
		parts := strings.Split(key, ".")
		return len(parts) < 3 || parts[2] != "rate_limit"
	}
	return slices.Contains(restartOnly, key)
}
