package conf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Patch returns a copy of c with body, a partial configuration in JSON
// (the body of POST /config: {"batch_processing": {"batch_size": 15}}),
// deep-merged over it and the whole result validated. c is never
// modified. Errors are FieldErrors whose first Key is the key to report:
// unknown keys, wrong JSON types (10.5 or "5" for an integer, null for
// anything but an upstream's rate_limit key, where null removes the
// override), out-of-range values, and changes to keys that require a
// restart. Lists replace lists whole.
func (c *Config) Patch(body []byte) (*Config, error) {
	obj, fe := decodeObject(body)
	if fe != nil {
		return nil, FieldErrors{*fe}
	}
	next := c.Clone()
	m := merger{touched: map[string]bool{}}
	m.value("", reflect.ValueOf(next).Elem(), obj)
	if len(m.errs) > 0 {
		return nil, m.errs
	}
	// GET /config shows the token as RedactedValue; posting that document
	// back means "unchanged", not "set the token to <redacted>".
	if next.Server.AdminToken == RedactedValue && c.Server.AdminToken != "" {
		next.Server.AdminToken = c.Server.AdminToken
	}
	if next.Cluster.RedisURL != c.Cluster.RedisURL && next.Cluster.RedisURL == redactURL(c.Cluster.RedisURL) {
		next.Cluster.RedisURL = c.Cluster.RedisURL
	}
	if errs := restartChanges(c, next); len(errs) > 0 {
		return nil, errs
	}
	// Unchanged but for their rate_limit tables, and [] may have replaced
	// nil: keep the exact original otherwise.
	ups := c.Clone().Upstreams
	for name, u := range ups {
		u.RateLimit = next.Upstreams[name].RateLimit
		ups[name] = u
	}
	next.Upstreams = ups
	if errs := next.validate(); len(errs) > 0 {
		return nil, m.blame(errs)
	}
	return next, nil
}

func decodeObject(body []byte) (map[string]any, *FieldError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &FieldError{Reason: `empty body: expected a JSON object such as {"batch_processing": {"batch_size": 15}}`}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // to tell 10 from 10.5 and keep int64 exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &FieldError{Reason: "invalid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Reason: "invalid JSON: unexpected data after the top-level object"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &FieldError{Reason: "expected a JSON object of settings, got " + describe(v)}
	}
	return obj, nil
}

// merger writes a decoded JSON value over a reflect.Value of the config,
// recording type errors and which leaf keys were set.
type merger struct {
	errs    FieldErrors
	touched map[string]bool
}

func (m *merger) fail(key, format string, args ...any) {
	m.errs = append(m.errs, FieldError{Key: key, Reason: fmt.Sprintf(format, args...)})
}

func (m *merger) value(key string, dst reflect.Value, src any) {
	if top, _, _ := strings.Cut(key, "."); top == "upstreams" {
		m.touched[top] = true
	}
	if key != "" {
		m.touched[key] = true
	}
	switch dst.Kind() {
	case reflect.Pointer: // an upstream's rate_limit override
		if src == nil {
			dst.SetZero() // follow rate_limit again
			return
		}
		v := reflect.New(dst.Type().Elem())
		m.value(key, v.Elem(), src)
		dst.Set(v)
	case reflect.Struct:
		obj, ok := src.(map[string]any)
		if !ok {
			m.typeError(key, "an object", src)
			return
		}
		fields := jsonFields(dst.Type())
		for _, name := range slices.Sorted(maps.Keys(obj)) {
			sub := join(key, name)
			i, ok := fields[name]
			if !ok {
				m.fail(sub, "unknown key %s", sub)
				continue
			}
			m.value(sub, dst.Field(i), obj[name])
		}
	case reflect.Map: // upstreams: merge into each named entry
		obj, ok := src.(map[string]any)
		if !ok {
			m.typeError(key, "an object", src)
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(dst.Type()))
		}
		for _, name := range slices.Sorted(maps.Keys(obj)) {
			entry := reflect.New(dst.Type().Elem()).Elem()
			if old := dst.MapIndex(reflect.ValueOf(name)); old.IsValid() {
				entry.Set(old)
			}
			m.value(join(key, name), entry, obj[name])
			dst.SetMapIndex(reflect.ValueOf(name), entry)
		}
	case reflect.Slice: // []string
		arr, ok := src.([]any)
		if !ok {
			m.typeError(key, "an array of strings", src)
			return
		}
		out := make([]string, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				m.typeError(fmt.Sprintf("%s[%d]", key, i), "a string", e)
				return
			}
			out[i] = s
		}
		dst.Set(reflect.ValueOf(out))
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			m.typeError(key, "true or false", src)
			return
		}
		dst.SetBool(b)
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			m.typeError(key, "a string", src)
			return
		}
		dst.SetString(s)
	case reflect.Int, reflect.Int64:
		n, ok := src.(json.Number)
		if !ok {
			m.typeError(key, "an integer", src)
			return
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange), err == nil && dst.OverflowInt(i):
			m.fail(key, "%s: %s is out of range", key, n)
		case err != nil:
			m.typeError(key, "an integer", src)
		default:
			dst.SetInt(i)
		}
	case reflect.Float64:
		n, ok := src.(json.Number)
		if !ok {
			m.typeError(key, "a number", src)
			return
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			m.fail(key, "%s: %s is out of range", key, n)
			return
		}
		dst.SetFloat(f)
	default:
		panic("conf: cannot patch a " + dst.Kind().String())
	}
}

func (m *merger) typeError(key, want string, got any) {
	m.fail(key, "%s: expected %s, got %s", key, want, describe(got))
}

// blame puts first the problems about keys the patch set, and reports a
// cross-field problem under the key the client sent, so that the HTTP
// error's "field" points at what the client can change.
func (m *merger) blame(errs FieldErrors) FieldErrors {
	for i, e := range errs {
		if !m.touched[e.Key] && m.touched[e.other] {
			errs[i].Key, errs[i].other = e.other, e.Key
		}
	}
	slices.SortStableFunc(errs, func(a, b FieldError) int {
		ta, tb := m.touched[a.Key], m.touched[b.Key]
		switch {
		case ta && !tb:
			return -1
		case tb && !ta:
			return 1
		}
		return 0
	})
	return errs
}

// restartChanges refuses changes a running deerd cannot apply. Keys sent
// with their current value are fine, so a client may POST back GET /config.
func restartChanges(old, next *Config) FieldErrors {
	var errs FieldErrors
	for _, key := range restartOnly {
		var same bool
		if key == "upstreams" {
			same = sameUpstreams(old.Upstreams, next.Upstreams)
		} else {
			f := fieldsByKey[key]
			same = f.in(old).Interface() == f.in(next).Interface()
		}
		if !same {
			errs = append(errs, FieldError{Key: key, Reason: key + " cannot change while deerd runs: requires a restart"})
		}
	}
	return errs
}

func sameUpstreams(a, b map[string]Upstream) bool {
	return maps.EqualFunc(a, b, func(x, y Upstream) bool {
		return slices.Equal(x.Models, y.Models) && slices.Equal(x.Endpoints, y.Endpoints) &&
			x.BaseURL == y.BaseURL && x.APIKeyEnv == y.APIKeyEnv && x.Cache == y.Cache &&
			x.Batch == y.Batch && x.Timeout == y.Timeout && x.Builtin == y.Builtin
	})
}

func jsonFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		m[name] = i
	}
	return m
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// describe shows a decoded JSON value in an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 40 {
			return strconv.Quote(v[:40]) + "…"
		}
		return strconv.Quote(v)
	case json.Number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
