package conf

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decodeTOML decodes data over c, which holds the lower layers, so keys
// absent from data keep their value. An upstream table replaces a
// same-named upstream of a lower layer whole: its fields are not merged.
//
// It goes key by key rather than through toml.Decode into c, so that one
// bad key hides no other: an unknown key or a value of the wrong type is
// reported with its line and skipped, and the rest of the file applies. A
// syntax error stops the file: nothing of it applies.
func decodeTOML(c *Config, src Source, data []byte, file, layer string) error {
	var root map[string]toml.Primitive
	md, err := toml.Decode(string(data), &root)
	if err != nil {
		return FieldErrors{syntaxError(file, err)}
	}
	d := &tomlLayer{md: md, file: file, layer: layer, src: src, first: firstSeen(md)}
	d.table(nil, root, reflect.ValueOf(c).Elem())
	return d.errs.orNil()
}

// syntaxError turns BurntSushi's parse error into a problem naming the
// file, line and column, and the key it was reading.
func syntaxError(file string, err error) FieldError {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return FieldError{Reason: file + ": " + err.Error()}
	}
	fe := FieldError{Key: pe.LastKey, Reason: fmt.Sprintf("%s:%d:%d: TOML syntax error", file, pe.Position.Line, pe.Position.Col)}
	if pe.LastKey != "" {
		fe.Reason += " after key " + pe.LastKey
	}
	fe.Reason += ": " + pe.Message
	return fe
}

// tomlLayer decodes one file's keys into a Config.
type tomlLayer struct {
	md    toml.MetaData
	file  string
	layer string // what Source records for the keys set here
	src   Source
	first map[string]int // dotted key → index of its first key in md.Keys()
	errs  FieldErrors
}

// firstSeen maps every key, and every table a key lies under, to where it
// first appears, to visit keys in file order: problems then come in the
// order of their lines.
func firstSeen(md toml.MetaData) map[string]int {
	first := map[string]int{}
	for i, k := range md.Keys() {
		for n := 1; n <= len(k); n++ {
			if s := k[:n].String(); first[s] == 0 {
				first[s] = i + 1
			}
		}
	}
	return first
}

func (d *tomlLayer) fail(key toml.Key, p toml.Primitive, withCol bool, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Key: key.String(), Reason: d.where(key, p, withCol) + key.String() + ": " + fmt.Sprintf(format, args...)})
}

// where is "FILE:LINE: " for key, or "FILE:LINE:COL: " when withCol (a
// value's column; a table header's is not reliable), or "FILE: " when
// the line is not known.
func (d *tomlLayer) where(key toml.Key, p toml.Primitive, withCol bool) string {
	pos := d.position(p)
	switch {
	case pos.Line == 0:
		return d.file + ": "
	case withCol:
		return fmt.Sprintf("%s:%d:%d: ", d.file, pos.Line, pos.Col)
	}
	return fmt.Sprintf("%s:%d: ", d.file, pos.Line)
}

// locator fails every decode. BurntSushi records each key's position but
// only shows it in the ParseError an Unmarshaler's failure becomes, so
// decoding a key into a locator is how its position is read.
type locator struct{}

var errLocate = errors.New("locate")

func (locator) UnmarshalTOML(any) error { return errLocate }

// position is where p's key is defined; Line is 0 for a table only
// implied by a longer key ([a.b] implies a), and then the position of
// the first key under it is used.
func (d *tomlLayer) position(p toml.Primitive) toml.Position {
	var pe toml.ParseError
	if errors.As(d.md.PrimitiveDecode(p, locator{}), &pe) && pe.Position.Line > 0 {
		return pe.Position
	}
	if sub, ok := d.entries(p); ok {
		for _, name := range d.ordered(nil, sub) {
			if pos := d.position(sub[name]); pos.Line > 0 {
				return pos
			}
		}
	}
	return toml.Position{}
}

// ordered returns the names of a table's entries in file order.
func (d *tomlLayer) ordered(key toml.Key, entries map[string]toml.Primitive) []string {
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		return d.first[append(slices.Clone(key), a).String()] - d.first[append(slices.Clone(key), b).String()]
	})
	return names
}

// table decodes entries into the struct dst, whose toml tags name the
// keys. Names must match exactly: BurntSushi would also take
// MAX_CONNECTIONS for max_connections, which env vars and JSON do not.
func (d *tomlLayer) table(key toml.Key, entries map[string]toml.Primitive, dst reflect.Value) {
	t := dst.Type()
	for _, name := range d.ordered(key, entries) {
		sub := append(slices.Clone(key), name)
		i := fieldIndex(t, name)
		if i < 0 {
			d.unknown(sub, entries[name], t)
			continue
		}
		d.value(sub, entries[name], dst.Field(i))
	}
}

func fieldIndex(t reflect.Type, name string) int {
	for i := range t.NumField() {
		if tagName(t.Field(i)) == name {
			return i
		}
	}
	return -1
}

// unknown reports a key dst's struct has no field for, with the closest
// field's key when one is near (a typo, or the wrong case).
func (d *tomlLayer) unknown(key toml.Key, p toml.Primitive, t reflect.Type) {
	names := make([]string, t.NumField())
	for i := range names {
		names[i] = tagName(t.Field(i))
	}
	msg := "unknown key " + key.String()
	if s := closest(key[len(key)-1], names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", append(slices.Clone(key[:len(key)-1]), s))
	}
	d.errs = append(d.errs, FieldError{Key: key.String(), Reason: d.where(key, p, false) + msg})
}

// value decodes p into dst by dst's kind, recording a problem instead
// when p's TOML type does not fit; dst is then unchanged.
func (d *tomlLayer) value(key toml.Key, p toml.Primitive, dst reflect.Value) {
	switch dst.Kind() {
	case reflect.Struct:
		entries, ok := d.entries(p)
		if !ok {
			d.typeError(key, p, "a table")
			return
		}
		d.table(key, entries, dst)
		return
	case reflect.Map: // upstreams
		entries, ok := d.entries(p)
		if !ok {
			d.typeError(key, p, "a table of upstreams")
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(dst.Type()))
		}
		for _, name := range d.ordered(key, entries) {
			u := NewUpstream("")
			d.value(append(slices.Clone(key), name), entries[name], reflect.ValueOf(&u).Elem())
			dst.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(u))
		}
		return
	case reflect.Pointer: // an override: set only when the file sets it
		v := reflect.New(dst.Type().Elem())
		if d.leaf(key, p, v.Elem()) {
			dst.Set(v)
		}
		return
	}
	d.leaf(key, p, dst)
}

// entries returns the keys of p when it is a table. (Decoding a value that
// is not a table into a map is no error to BurntSushi: it leaves the map
// nil.)
func (d *tomlLayer) entries(p toml.Primitive) (map[string]toml.Primitive, bool) {
	var raw any
	if err := d.md.PrimitiveDecode(p, &raw); err != nil {
		return nil, false
	}
	if _, table := raw.(map[string]any); !table {
		return nil, false
	}
	var entries map[string]toml.Primitive
	return entries, d.md.PrimitiveDecode(p, &entries) == nil
}

// leaf decodes a value that is not a table and records which layer set it.
func (d *tomlLayer) leaf(key toml.Key, p toml.Primitive, dst reflect.Value) bool {
	var raw any
	if err := d.md.PrimitiveDecode(p, &raw); err != nil {
		d.fail(key, p, true, "%v", err)
		return false
	}
	ok := true
	switch dst.Kind() {
	case reflect.Bool:
		b, is := raw.(bool)
		if ok = is; is {
			dst.SetBool(b)
		}
	case reflect.String:
		s, is := raw.(string)
		if ok = is; is {
			dst.SetString(s)
		}
	case reflect.Int, reflect.Int64:
		n, is := raw.(int64)
		if ok = is; is {
			if dst.OverflowInt(n) {
				d.fail(key, p, true, "%d is out of range", n)
				return false
			}
			dst.SetInt(n)
		}
	case reflect.Float64:
		switch n := raw.(type) {
		case float64:
			dst.SetFloat(n)
		case int64:
			dst.SetFloat(float64(n))
		default:
			ok = false
		}
	case reflect.Slice: // []string
		var arr []any
		arr, ok = raw.([]any)
		out := make([]string, len(arr))
		for i := 0; ok && i < len(arr); i++ {
			out[i], ok = arr[i].(string)
		}
		if ok {
			dst.Set(reflect.ValueOf(out))
		}
	default:
		panic("conf: cannot decode TOML into a " + dst.Kind().String())
	}
	if !ok {
		d.typeError(key, p, want(dst.Kind()))
		return false
	}
	d.src[key.String()] = d.layer
	return true
}

func (d *tomlLayer) typeError(key toml.Key, p toml.Primitive, want string) {
	var raw any
	_ = d.md.PrimitiveDecode(p, &raw)
	d.fail(key, p, true, "expected %s, got %s", want, describeTOML(raw))
}

func want(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	}
	return "an array of strings"
}

// describeTOML shows a decoded TOML value in an error message.
func describeTOML(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			return "the string " + strconv.Quote(v[:40]) + "…"
		}
		return "the string " + strconv.Quote(v)
	case int64:
		return "the integer " + strconv.FormatInt(v, 10)
	case float64:
		s := num(v)
		if !strings.ContainsAny(s, ".eEnN") {
			s += ".0" // 10.0 as written, not an integer
		}
		return "the float " + s
	case bool:
		return "the boolean " + strconv.FormatBool(v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("a %T", v)
}
