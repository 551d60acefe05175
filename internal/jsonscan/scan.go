// Package jsonscan reads JSON text by scanning its bytes instead of decoding
// it: the members of an object, the elements of an array, one member's
// value, and a canonical form for hashing. Valid input is checked with
// json.Valid, which allocates nothing, and then walked with plain byte
// scans; only escaped keys are decoded. The hot paths (every OpenAI
// request's model and stream, every cache key, every embeddings batch) use
// it because a json.Decoder copied the body and every value.
//
// Walk, Members and AppendCanonical validate what they are given. Find,
// RawMembers and Elements do not: they are for hot paths that validate a
// document once, or not at all, and then walk its parts.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// ErrNotObject is Walk's error for valid JSON that is not an object, and
// RawMembers' for data that does not start with one.
var ErrNotObject = errors.New("the body must be a JSON object")

// ErrNotArray is Elements' error for data that does not start with an array.
var ErrNotArray = errors.New("not a JSON array")

// ErrMalformed is RawMembers' and Elements' error where the structure they
// walk through breaks.
var ErrMalformed = errors.New("malformed JSON")

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
	end := eachMember(data, i, func(k, v []byte) {
		if keyIs(k, key) {
			value, ok = v, true
		}
	})
	if end < 0 {
		return nil, false
	}
	return value, ok
}

// RawMembers calls fn with each member of the object in data: its key's
// string token as written (quotes and escapes included, for the caller to
// decode as it sees fit) and its value's exact bytes. Both are subslices of
// data capped at their end, so appending to one never writes into data.
// Like Find, it does not validate: it checks the structure it walks
// through, and returns ErrMalformed when that breaks or anything but space
// follows the object, after fn has seen the members before the break; a
// malformed scalar or escape inside a value goes unnoticed. For valid JSON
// it is exact. It never panics and never reads past data.
func RawMembers(data []byte, fn func(key, value []byte)) error {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return ErrNotObject
	}
	return endsData(data, eachMember(data, i, fn))
}

// Elements calls fn with the exact bytes of each element of the array in
// data, in order, each a subslice of data capped at its end. It checks what
// RawMembers checks, and no more: ErrNotArray when data does not start with
// an array, ErrMalformed when its structure breaks.
func Elements(data []byte, fn func(value []byte)) error {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '[' {
		return ErrNotArray
	}
	return endsData(data, eachElement(data, i, fn))
}

// endsData checks that only space follows the value that ends at data[end],
// an end of -1 meaning the value is malformed.
func endsData(data []byte, end int) error {
	if end < 0 || skipSpace(data, end) != len(data) {
		return ErrMalformed
	}
	return nil
}

// eachMember walks the object whose brace is at data[i], calling fn with
// each member's key token and value (capped subslices); it returns the
// offset just past the closing brace, or -1 where the structure breaks.
func eachMember(data []byte, i int, fn func(key, value []byte)) int {
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		return i + 1 // {}
	}
	for {
		if i == len(data) || data[i] != '"' {
			return -1
		}
		kend := skipString(data, i)
		if kend < 0 {
			return -1
		}
		k := data[i:kend:kend]
		if i = skipSpace(data, kend); i == len(data) || data[i] != ':' {
			return -1
		}
		if i = skipSpace(data, i+1); i == len(data) {
			return -1
		}
		end := skipValue(data, i)
		if end < 0 {
			return -1
		}
		fn(k, data[i:end:end])
		if i = skipSpace(data, end); i == len(data) {
			return -1 // no closing brace
		}
		switch data[i] {
		case '}':
			return i + 1
		case ',':
			i = skipSpace(data, i+1)
		default:
			return -1
		}
	}
}

// eachElement is eachMember for the array whose bracket is at data[i].
func eachElement(data []byte, i int, fn func(value []byte)) int {
	if i = skipSpace(data, i+1); i < len(data) && data[i] == ']' {
		return i + 1 // []
	}
	for {
		if i == len(data) {
			return -1
		}
		end := skipValue(data, i)
		if end < 0 {
			return -1
		}
		fn(data[i:end:end])
		if i = skipSpace(data, end); i == len(data) {
			return -1 // no closing bracket
		}
		switch data[i] {
		case ']':
			return i + 1
		case ',':
			i = skipSpace(data, i+1)
		default:
			return -1
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
// that is all; for Find, RawMembers and Elements they also stay within
// data, returning -1 for a token that does not end.

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
