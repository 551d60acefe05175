package jsonscan

import (
	"bytes"
	"encoding/json"
	"slices"
)

// AppendCanonical appends the canonical form of the JSON value in data to
// dst: insignificant whitespace removed and object members sorted by their
// unescaped keys (stably, so repeated keys keep their order and the last
// still wins), while strings and numbers keep their literal text, so
// nothing is rounded or re-escaped. Two bodies that differ only in member
// order or spacing have the same canonical form. ok is false, and dst is
// returned as it was, when data is not valid JSON.
func AppendCanonical(dst, data []byte) (out []byte, ok bool) {
	if !json.Valid(data) {
		return dst, false
	}
	c := canonicalizer{members: make([]member, 0, 16)} // most bodies fit: no growth
	out, _ = c.value(dst, data, skipSpace(data, 0))
	return out, true
}

// canonicalizer holds the members of the objects being sorted, as a stack
// shared by the nesting levels: each object sorts and emits its own slice
// above its parent's, then truncates back, so one allocation serves a body.
type canonicalizer struct {
	members []member
}

// member is one object member: its unescaped key, for sorting, and the
// offsets of its literal key token and of its value.
type member struct {
	sortKey              []byte
	keyStart, keyEnd     int
	valueStart, valueEnd int
}

// value appends the canonical form of the value starting at data[i] (no
// leading space) and returns the offset just past it.
func (c *canonicalizer) value(dst, data []byte, i int) ([]byte, int) {
	switch data[i] {
	case '{':
		return c.object(dst, data, i)
	case '[':
		dst = append(dst, '[')
		i = skipSpace(data, i+1)
		for first := true; data[i] != ']'; first = false {
			if !first {
				dst = append(dst, ',')
				i = skipSpace(data, i+1) // past the comma
			}
			dst, i = c.value(dst, data, i)
			i = skipSpace(data, i)
		}
		return append(dst, ']'), i + 1
	}
	end := skipValue(data, i)
	return append(dst, data[i:end]...), end
}

func (c *canonicalizer) object(dst, data []byte, i int) ([]byte, int) {
	base := len(c.members)
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		m := member{keyStart: i}
		i = skipString(data, i)
		m.keyEnd = i
		m.sortKey = unquoteKey(data[m.keyStart:m.keyEnd])
		i = skipSpace(data, skipSpace(data, i)+1) // past the colon
		m.valueStart = i
		i = skipValue(data, i)
		m.valueEnd = i
		c.members = append(c.members, m)
		i = skipSpace(data, i)
	}
	slices.SortStableFunc(c.members[base:], func(a, b member) int { return bytes.Compare(a.sortKey, b.sortKey) })
	dst = append(dst, '{')
	// Index, not range: nested objects push above end (and may move the
	// backing array), then truncate back to end.
	for j, end := base, len(c.members); j < end; j++ {
		if j > base {
			dst = append(dst, ',')
		}
		m := c.members[j]
		dst = append(dst, data[m.keyStart:m.keyEnd]...)
		dst = append(dst, ':')
		dst, _ = c.value(dst, data, m.valueStart)
	}
	c.members = c.members[:base]
	return append(dst, '}'), i + 1
}
