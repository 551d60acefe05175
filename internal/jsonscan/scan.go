// Package jsonscan reads JSON text by scanning its bytes instead of decoding
// it: the members of a top-level object, one member's value, and a
// canonical form for hashing. Valid input is checked with json.Valid, which
// allocates nothing, and then walked with plain byte scans; only escaped
// keys are decoded. The hot paths (every OpenAI request's model and stream,
// every cache key) use it because a json.Decoder copied the body and every
// value.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// ErrNotObject is Walk's error for valid JSON that is not an object.
var ErrNotObject = errors.New("the body must be a JSON object")

// Members calls fn with each top-level member's key (unescaped) and the
// exact bytes of its value, a subslice of data. It checks that data is one
// well-formed JSON object and decodes nothing else.
func Members(data []byte, fn func(key, value []byte)) error {
	return Walk(data, func(key []byte, start, end int) { fn(key, data[start:end]) })
}

// Walk calls fn with each top-level member's key (unescaped, valid until fn
// returns) and the offsets of its value in data, in the order they appear.
// A valid body is walked by a byte scan; an invalid one goes through a
// json.Decoder, whose error says what is wrong and where. Valid JSON that
// is not an object is ErrNotObject.
func Walk(data []byte, fn func(key []byte, start, end int)) error {
	if !json.Valid(data) {
		return decodeWalk(data, fn)
	}
	if !walkValid(data, fn) {
		return ErrNotObject
	}
	return nil
}

// Find returns the value of the top-level member named key, the last one
// when a key repeats (as encoding/json and Python's json keep it); ok is
// false when there is none. Find is for hot paths that only need one
// member, and does not validate data as Walk does (json.Valid alone costs
// more than the rest of a chat request's handling): it checks the
// structure it walks through, the object's braces, the keys, the colons
// and the extent of each value, and returns false when that breaks, but a
// malformed scalar or escape inside a value goes unnoticed. For valid JSON
// its answer is exact. It never panics and never reads past data.
func Find(data []byte, key string) (value []byte, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		return nil, false // {}
	}
	for {
		if i == len(data) || data[i] != '"' {
			return nil, false
		}
		kend := skipString(data, i)
		if kend < 0 {
			return nil, false
		}
		k := data[i:kend]
		if i = skipSpace(data, kend); i == len(data) || data[i] != ':' {
			return nil, false
		}
		if i = skipSpace(data, i+1); i == len(data) {
			return nil, false
		}
		end := skipValue(data, i)
		if end < 0 {
			return nil, false
		}
		if keyIs(k, key) {
			value, ok = data[i:end], true
		}
		if i = skipSpace(data, end); i == len(data) {
			return nil, false // no closing brace
		}
		switch data[i] {
		case '}':
			return value, ok
		case ',':
			i = skipSpace(data, i+1)
		default:
			return nil, false
		}
	}
}

// keyIs reports whether the string token tok decodes to key.
func keyIs(tok []byte, key string) bool {
	if plain(tok) {
		return string(tok[1:len(tok)-1]) == key
	}
	var k string
	return json.Unmarshal(tok, &k) == nil && k == key
}

// walkValid is Walk over data already known to be valid JSON; it reports
// false when data is not an object.
func walkValid(data []byte, fn func(key []byte, start, end int)) bool {
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		kstart := i
		i = skipString(data, i)
		key := unquoteKey(data[kstart:i])
		i = skipSpace(data, skipSpace(data, i)+1) // past the colon
		start := i
		i = skipValue(data, i)
		fn(key, start, i)
		i = skipSpace(data, i)
	}
	return true
}

// unquoteKey decodes a valid JSON string token: in place when it needs no
// unescaping, else through encoding/json.
func unquoteKey(tok []byte) []byte {
	if plain(tok) {
		return tok[1 : len(tok)-1]
	}
	var k string
	_ = json.Unmarshal(tok, &k) // valid JSON: cannot fail
	return []byte(k)
}

// PlainString decodes a JSON string token that needs no unescaping (no
// backslash, valid UTF-8) without the reflection of json.Unmarshal; ok is
// false for anything else, which the caller decodes the slow way.
func PlainString(v []byte) (s string, ok bool) {
	if !plain(v) {
		return "", false
	}
	return string(v[1 : len(v)-1]), true
}

// plain reports whether v is a JSON string token whose bytes between the
// quotes are its value.
func plain(v []byte) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	in := v[1 : len(v)-1]
	return bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in)
}

// The skip functions move over one token of JSON starting at data[i],
// returning the offset just past it. On valid JSON (Walk, AppendCanonical)
// that is all; for Find they also stay within data, returning -1 for a
// token that does not end.

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++ // the escaped byte; \uXXXX's digits need no care
		case '"':
			return i + 1
		}
	}
	return -1
}

func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				if i = skipString(data, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	// A number, true, false or null: up to the next delimiter.
	start := i
	for ; i < len(data); i++ {
		switch data[i] {
		case ',', '}', ']', ':', ' ', '\t', '\n', '\r':
			if i == start {
				return -1
			}
			return i
		}
	}
	return i
}

// decodeWalk is Walk with a json.Decoder, for bodies that are not valid
// JSON: its error says what is wrong and where. The fuzz test holds the
// byte scan to it.
func decodeWalk(data []byte, fn func(key []byte, start, end int)) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return ErrNotObject
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ErrNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
		// The decoder stops right after the value, and RawMessage holds its
		// bytes verbatim: the value is the len(value) bytes before the offset.
		end := int(dec.InputOffset())
		fn([]byte(key), end-len(value), end)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}
