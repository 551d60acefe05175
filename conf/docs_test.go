package conf

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"testing"
)

// TestDocsTable checks docs/configuration.md lists every key with its env
// var and its default as Default() has it, and every upstream field.
func TestDocsTable(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\| `(DEER_[A-Z0-9_]+)` \\| `([^`]*)`")
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		rows[m[1]] = m[2:]
	}
	def := Default()
	for _, f := range fields {
		r, ok := rows[f.key]
		if !ok {
			t.Errorf("docs/configuration.md has no row for %s", f.key)
			continue
		}
		if r[0] != EnvFor(f.key) {
			t.Errorf("docs: %s env var %s, want %s", f.key, r[0], EnvFor(f.key))
		}
		var got any
		switch f.kind {
		case reflect.String:
			got, err = strconv.Unquote(r[1])
		case reflect.Bool:
			got, err = strconv.ParseBool(r[1])
		case reflect.Int:
			var n int64
			n, err = strconv.ParseInt(r[1], 10, 64)
			got = int(n)
		case reflect.Int64:
			got, err = strconv.ParseInt(r[1], 10, 64)
		case reflect.Float64:
			got, err = strconv.ParseFloat(r[1], 64)
		}
		if want := f.in(def).Interface(); err != nil || got != want {
			t.Errorf("docs: %s default %s, want %#v", f.key, r[1], want)
		}
	}
	if len(rows) != len(fields) {
		t.Errorf("docs have %d setting rows, want %d", len(rows), len(fields))
	}
	ut := reflect.TypeFor[Upstream]()
	for i := range ut.NumField() {
		name := tagName(ut.Field(i))
		if !regexp.MustCompile("(?m)^\\| `upstreams\\.NAME\\." + name + "` \\|").Match(doc) {
			t.Errorf("docs/configuration.md has no row for upstreams.NAME.%s", name)
		}
	}
}
