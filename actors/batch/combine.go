package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/deer-runtime/deer/internal/jsonscan"
)

// This file is the functional core of a combined /v1/embeddings call (SPEC
// §5, Batching): what a caller's body needs to batch (ParseEmbeddings), the
// one body sent upstream (Combine) and the answers cut back out of the
// upstream's answer (Split). It holds no state and is safe for concurrent use.

// FieldError says why a body cannot be batched, naming the field at fault.
// Such a body is best sent upstream alone, so that the provider answers it in
// its own words.
type FieldError struct {
	Field   string // "model", "input" or an option's name; "" for the body as a whole
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "embeddings request: " + e.Problem
	}
	return "embeddings request: " + e.Field + ": " + e.Problem
}

// ErrMismatch is returned by Combine for bodies that differ in model or
// options: they cannot share a call.
var ErrMismatch = errors.New("embeddings bodies differ in model or options")

// ErrBadAnswer is returned by Split for an upstream answer it cannot cut: not
// the list OpenAI answers with, or data that does not hold exactly one entry
// per input index.
var ErrBadAnswer = errors.New("embeddings answer cannot be split")

// inputKind is the kind of an input: OpenAI takes a list of texts or a list
// of token arrays, never both in one call.
type inputKind int

const (
	kindText   inputKind = iota // a string, or an array of strings
	kindTokens                  // an array of token ids, or an array of them
)

func (k inputKind) String() string {
	switch k {
	case kindText:
		return "text"
	case kindTokens:
		return "tokens"
	}
	return fmt.Sprintf("inputKind(%d)", int(k))
}

// embeddingsRequest is a parsed body. Its raw values point into the body.
type embeddingsRequest struct {
	fields  []field // every top-level member, as sent
	model   string
	options string
	inputs  []json.RawMessage // one per input, as sent: a string or a token array
}

// ParseEmbeddings reads what batching needs from a /v1/embeddings body: the
// model; the options key, which bodies must share to be combined; and the
// number of inputs. The options key is the input's kind ("text" or
// "tokens"), a space, and the canonical JSON of every field but model and
// input: keys sorted at every level, no insignificant space, strings and
// numbers as written (so 256 and 256.0 differ, and a field set to its default
// differs from one left out: such bodies are merely not batched together).
//
// input may be a string (1 input), an array of strings (one each), an array
// of integers (1 tokenized input) or an array of non-empty integer arrays
// (one each). Empty strings, empty arrays and mixed lists are refused: the
// provider refuses them, and in a combined call one of them would fail every
// caller's inputs. So are option values nested deeper than 32 levels. Errors
// are *FieldError.
func ParseEmbeddings(body []byte) (model, options string, inputs int, err error) {
	req, err := parseEmbeddings(body)
	if err != nil {
		return "", "", 0, err
	}
	return req.model, req.options, len(req.inputs), nil
}

func parseEmbeddings(body []byte) (*embeddingsRequest, error) {
	if !json.Valid(body) {
		return nil, &FieldError{Problem: "body is not valid JSON"}
	}
	body = bytes.TrimSpace(body)
	if body[0] != '{' {
		return nil, &FieldError{Problem: "body is not a JSON object"}
	}
	req := &embeddingsRequest{fields: fieldsOf(body)}
	get := func(key string) (json.RawMessage, bool) {
		if i := fieldIndex(req.fields, key); i >= 0 && !isNull(req.fields[i].val) {
			return req.fields[i].val, true
		}
		return nil, false
	}

	raw, ok := get("model")
	if !ok {
		return nil, &FieldError{"model", "missing"}
	}
	if err := json.Unmarshal(raw, &req.model); err != nil {
		return nil, &FieldError{"model", "must be a string"}
	}
	if req.model == "" {
		return nil, &FieldError{"model", "must not be empty"}
	}

	raw, ok = get("input")
	if !ok {
		return nil, &FieldError{"input", "missing"}
	}
	kind, inputs, problem := parseInput(raw)
	if problem != "" {
		return nil, &FieldError{"input", problem}
	}
	req.inputs = inputs

	keys := make([]string, 0, len(req.fields))
	for _, f := range req.fields {
		if f.key != "model" && f.key != "input" {
			keys = append(keys, f.key)
		}
	}
	slices.Sort(keys)
	opts := append(make([]byte, 0, 64), kind.String()...)
	opts = append(opts, " {"...)
	for i, k := range keys {
		if i > 0 {
			opts = append(opts, ',')
		}
		opts = appendKey(opts, k)
		var err error
		if opts, err = appendCanonical(opts, req.fields[fieldIndex(req.fields, k)].val, 0); err != nil {
			return nil, &FieldError{k, err.Error()}
		}
	}
	req.options = string(append(opts, '}'))
	return req, nil
}

// maxOptionDepth bounds the nesting of option values, which keeps the cost of
// the options key linear in the body's size.
const maxOptionDepth = 32

// appendCanonical writes a valid JSON value in canonical form: objects with
// their keys sorted (a repeated key counted once, with its last value), no
// insignificant space, strings and numbers exactly as written. Two values
// with the same canonical form mean the same thing; the converse does not
// always hold ("A" and "\u0041"), which only costs a missed batch.
func appendCanonical(b []byte, raw json.RawMessage, depth int) ([]byte, error) {
	if depth >= maxOptionDepth && (raw[0] == '{' || raw[0] == '[') {
		return nil, fmt.Errorf("nested deeper than %d levels", maxOptionDepth)
	}
	var err error
	switch raw[0] {
	case '{':
		fs := fieldsOf(raw)
		slices.SortFunc(fs, func(x, y field) int { return strings.Compare(x.key, y.key) })
		b = append(b, '{')
		for i, f := range fs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendKey(b, f.key)
			if b, err = appendCanonical(b, f.val, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case '[':
		b = append(b, '[')
		for i, e := range elemsOf(raw) {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendCanonical(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	return append(b, raw...), nil
}

// parseInput splits a valid JSON input value into its inputs, or says what is
// wrong with it.
func parseInput(raw json.RawMessage) (inputKind, []json.RawMessage, string) {
	const forms = "must be a string, an array of strings, an array of token ids or an array of token id arrays"
	switch raw[0] {
	case '"':
		if len(raw) == 2 {
			return 0, nil, "must not be an empty string"
		}
		return kindText, []json.RawMessage{raw}, ""
	case '[':
	default:
		return 0, nil, forms
	}
	elems := elemsOf(raw)
	if len(elems) == 0 {
		return 0, nil, "must not be an empty array"
	}
	switch c := elems[0][0]; {
	case c == '"':
		for i, e := range elems {
			if e[0] != '"' {
				return 0, nil, fmt.Sprintf("element %d is not a string, unlike element 0", i)
			}
			if len(e) == 2 {
				return 0, nil, fmt.Sprintf("element %d is an empty string", i)
			}
		}
		return kindText, elems, ""
	case c == '-' || c >= '0' && c <= '9':
		for i, e := range elems {
			if !isInteger(e) {
				return 0, nil, fmt.Sprintf("element %d is not an integer token id, unlike element 0", i)
			}
		}
		return kindTokens, []json.RawMessage{raw}, ""
	case c == '[':
		for i, e := range elems {
			if e[0] != '[' {
				return 0, nil, fmt.Sprintf("element %d is not a token id array, unlike element 0", i)
			}
			ids := elemsOf(e)
			if len(ids) == 0 {
				return 0, nil, fmt.Sprintf("element %d is an empty token id array", i)
			}
			for j, id := range ids {
				if !isInteger(id) {
					return 0, nil, fmt.Sprintf("element %d: token %d is not an integer", i, j)
				}
			}
		}
		return kindTokens, elems, ""
	}
	return 0, nil, forms
}

// isInteger reports whether a valid JSON value is an integer literal.
func isInteger(raw []byte) bool {
	if len(raw) > 0 && raw[0] == '-' {
		raw = raw[1:]
	}
	if len(raw) == 0 {
		return false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isNull(raw []byte) bool { return string(raw) == "null" }

// Combine builds the one request body that carries every body's inputs, in
// order: model and the other fields from the first body, input a list of all
// the inputs (strings or token arrays, each as sent). counts[i] is how many
// inputs bodies[i] contributed, as Split wants them. Every body must parse
// and share the first's model and options key (ErrMismatch).
func Combine(bodies [][]byte) (combined []byte, counts []int, err error) {
	if len(bodies) == 0 {
		return nil, nil, errors.New("combine embeddings: no bodies")
	}
	reqs := make([]*embeddingsRequest, len(bodies))
	counts = make([]int, len(bodies))
	size := 0
	for i, body := range bodies {
		req, err := parseEmbeddings(body)
		if err != nil {
			return nil, nil, fmt.Errorf("combine embeddings: body %d: %w", i, err)
		}
		if i > 0 && (req.model != reqs[0].model || req.options != reqs[0].options) {
			return nil, nil, fmt.Errorf("%w: body %d has model %q, options %q; body 0 has %q, %q",
				ErrMismatch, i, req.model, req.options, reqs[0].model, reqs[0].options)
		}
		reqs[i], counts[i] = req, len(req.inputs)
		size += len(body)
	}

	first := slices.Clone(reqs[0].fields)
	slices.SortFunc(first, func(x, y field) int { return strings.Compare(x.key, y.key) })
	b := make([]byte, 0, size+32)
	b = append(b, `{"model":`...)
	b = append(b, reqs[0].fields[fieldIndex(reqs[0].fields, "model")].val...)
	for _, f := range first {
		if f.key == "model" || f.key == "input" {
			continue
		}
		b = append(b, ',')
		b = appendKey(b, f.key)
		b = append(b, f.val...)
	}
	b = append(b, `,"input":[`...)
	n := 0
	for _, req := range reqs {
		for _, in := range req.inputs {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, in...)
			n++
		}
	}
	b = append(b, "]}"...)
	return b, counts, nil
}

// field is one member of a JSON object, its value as written.
type field struct {
	key string
	val json.RawMessage
}

// fieldsOf and elemsOf read JSON that json.Valid has accepted, through
// jsonscan's walks that do not validate again: a body costs one validating
// pass and one cheap one, and nothing is decoded that is only carried.

// fieldsOf reads a valid JSON object's members in order; the values point
// into b. A repeated key keeps its first place and takes its last value, as
// encoding/json would have it.
func fieldsOf(b []byte) []field {
	var fs []field
	var seen map[string]int // by key, once there are many members
	// b is valid: the walk cannot fail.
	_ = jsonscan.RawMembers(b, func(tok, val []byte) {
		key := keyString(tok)
		at := -1
		if seen != nil {
			if n, ok := seen[key]; ok {
				at = n
			}
		} else {
			at = fieldIndex(fs, key)
		}
		if at >= 0 {
			fs[at].val = val
			return
		}
		fs = append(fs, field{key, val})
		if seen == nil && len(fs) > 16 {
			seen = make(map[string]int, 2*len(fs))
			for n, f := range fs {
				seen[f.key] = n
			}
		} else if seen != nil {
			seen[key] = len(fs) - 1
		}
	})
	return fs
}

// elemsOf reads a valid JSON array's elements; they point into b.
func elemsOf(b []byte) []json.RawMessage {
	var elems []json.RawMessage
	// b is valid: the walk cannot fail.
	_ = jsonscan.Elements(b, func(e []byte) { elems = append(elems, e) })
	return elems
}

// keyString decodes a valid JSON string. Unlike jsonscan's keys, one with
// no escape is taken byte for byte, UTF-8 or not, so that appendKey writes
// it upstream as the caller sent it.
func keyString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // valid: cannot fail
	return s
}

func fieldIndex(fs []field, key string) int {
	for i := range fs {
		if fs[i].key == key {
			return i
		}
	}
	return -1
}

// entry is one element of the answer's data, with where its index is.
type entry struct {
	fields []field
	index  int // position of "index" in fields
}

// Split cuts a combined answer ({"object":"list","data":[{"object":
// "embedding","index":i,"embedding":…}],"model":…,"usage":{…}}) into one
// answer per caller, counts[k] being caller k's inputs (as Combine returns
// them). Caller k gets the data entries whose index falls in its range, in
// index order (the upstream may answer in any order), re-indexed from 0.
// Every other value is carried as written, so embeddings (float arrays or
// base64 strings) are never re-encoded, and every other top-level field is
// copied, in the answer's order.
//
// usage is divided in proportion to each caller's inputs: every non-negative
// integer in it (prompt_tokens, total_tokens, and those in nested objects up
// to depth 4) is cut by largest remainder into integers that sum exactly to
// it, ties going to the earlier caller; other usage values are copied.
//
// An answer that is not such a list, or whose data does not hold exactly one
// entry for every index in [0, sum of counts), is an ErrBadAnswer.
func Split(answer []byte, counts []int) ([][]byte, error) {
	if len(counts) == 0 {
		return nil, errors.New("split embeddings: no callers")
	}
	total := 0
	for k, c := range counts {
		if c < 1 || c > math.MaxInt-total {
			return nil, fmt.Errorf("split embeddings: caller %d has %d inputs", k, c)
		}
		total += c
	}
	if !json.Valid(answer) {
		return nil, fmt.Errorf("%w: not valid JSON", ErrBadAnswer)
	}
	answer = bytes.TrimSpace(answer)
	if answer[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadAnswer)
	}
	top := fieldsOf(answer)
	dataAt, usageAt := fieldIndex(top, "data"), fieldIndex(top, "usage")
	if dataAt < 0 {
		return nil, fmt.Errorf("%w: no data", ErrBadAnswer)
	}
	if top[dataAt].val[0] != '[' {
		return nil, fmt.Errorf("%w: data is not an array", ErrBadAnswer)
	}
	items := elemsOf(top[dataAt].val)
	if len(items) != total {
		return nil, fmt.Errorf("%w: data has %d entries for %d inputs", ErrBadAnswer, len(items), total)
	}
	byIndex := make([]entry, total)
	for i, item := range items {
		if item[0] != '{' {
			return nil, fmt.Errorf("%w: data[%d] is not an object", ErrBadAnswer, i)
		}
		fs := fieldsOf(item)
		at := fieldIndex(fs, "index")
		if at < 0 {
			return nil, fmt.Errorf("%w: data[%d] has no index", ErrBadAnswer, i)
		}
		idx, err := strconv.Atoi(string(fs[at].val))
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: data[%d]: index %s is not an integer", ErrBadAnswer, i, fs[at].val)
		case idx < 0 || idx >= total:
			return nil, fmt.Errorf("%w: data[%d]: index %d is outside [0, %d)", ErrBadAnswer, i, idx, total)
		case byIndex[idx].fields != nil:
			return nil, fmt.Errorf("%w: data[%d]: index %d appears twice", ErrBadAnswer, i, idx)
		}
		byIndex[idx] = entry{fs, at}
	}
	// total entries, total distinct indexes in [0, total): every index is covered.

	var usages [][]byte
	if usageAt >= 0 {
		usages = splitUsage(top[usageAt].val, counts, total, 0)
	}
	out := make([][]byte, len(counts))
	first := 0
	for k, c := range counts {
		b := make([]byte, 0, len(answer)/total*c+64)
		b = append(b, '{')
		for j, f := range top {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendKey(b, f.key)
			switch j {
			case dataAt:
				b = append(b, '[')
				for n, e := range byIndex[first : first+c] {
					if n > 0 {
						b = append(b, ',')
					}
					b = appendEntry(b, e, n)
				}
				b = append(b, ']')
			case usageAt:
				b = append(b, usages[k]...)
			default:
				b = append(b, f.val...)
			}
		}
		out[k] = append(b, '}')
		first += c
	}
	return out, nil
}

// appendEntry writes a data entry with its index set to n.
func appendEntry(b []byte, e entry, n int) []byte {
	b = append(b, '{')
	for i, f := range e.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, f.key)
		if i == e.index {
			b = strconv.AppendInt(b, int64(n), 10)
		} else {
			b = append(b, f.val...)
		}
	}
	return append(b, '}')
}

// maxUsageDepth bounds how deep splitUsage looks for counts.
const maxUsageDepth = 4

// splitUsage cuts a usage value into one per caller: a non-negative integer
// in proportion to counts, an object member by member (to maxUsageDepth),
// anything else copied.
func splitUsage(raw json.RawMessage, counts []int, total, depth int) [][]byte {
	out := make([][]byte, len(counts))
	if n, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
		for k, share := range apportion(n, counts, total) {
			out[k] = strconv.AppendUint(nil, share, 10)
		}
		return out
	}
	var fs []field
	if raw[0] == '{' && depth < maxUsageDepth {
		fs = fieldsOf(raw)
	}
	if fs == nil {
		for k := range out {
			out[k] = raw
		}
		return out
	}
	parts := make([][][]byte, len(fs))
	for i, f := range fs {
		parts[i] = splitUsage(f.val, counts, total, depth+1)
	}
	for k := range out {
		b := []byte{'{'}
		for i, f := range fs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendKey(b, f.key)
			b = append(b, parts[i][k]...)
		}
		out[k] = append(b, '}')
	}
	return out
}

// apportion divides n among callers in proportion to counts (summing to
// total) by largest remainder: floor(n·c/total) each, then one more to the
// largest remainders, the earlier caller first on a tie. The shares sum to n.
func apportion(n uint64, counts []int, total int) []uint64 {
	shares := make([]uint64, len(counts))
	rems := make([]uint64, len(counts))
	left := n
	for k, c := range counts {
		// n·c/total cannot overflow: c <= total, so the high word is < total.
		hi, lo := bits.Mul64(n, uint64(c))
		shares[k], rems[k] = bits.Div64(hi, lo, uint64(total))
		left -= shares[k]
	}
	// left < len(counts): it is the sum of fractions each below 1.
	order := make([]int, len(counts))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rems[a] > rems[b]:
			return -1
		case rems[a] < rems[b]:
			return 1
		}
		return 0
	})
	for _, k := range order[:left] {
		shares[k]++
	}
	return shares
}

// appendKey writes a JSON object key and its colon. A key is written as it
// was read unless it must be escaped, so that keyString reads back the same
// key (bytes that are not UTF-8 included).
func appendKey(b []byte, key string) []byte {
	plain := true
	for i := 0; i < len(key) && plain; i++ {
		c := key[i]
		plain = c >= 0x20 && c != '"' && c != '\\'
	}
	if plain {
		b = append(b, '"')
		b = append(b, key...)
		return append(b, '"', ':')
	}
	q, _ := json.Marshal(key) // a string always marshals
	b = append(b, q...)
	return append(b, ':')
}
