package batch

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseEmbeddings(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		model      string
		options    string
		inputs     int
	}{
		{"string", `{"model":"m","input":"hello"}`, "m", `text {}`, 1},
		{"strings", `{"model":"m","input":["a","b","c"]}`, "m", `text {}`, 3},
		{"one string in a list", `{"model":"m","input":["a"]}`, "m", `text {}`, 1},
		{"tokens", `{"model":"m","input":[1,2,3]}`, "m", `tokens {}`, 1},
		{"one token", `{"model":"m","input":[0]}`, "m", `tokens {}`, 1},
		{"token arrays", `{"model":"m","input":[[1,2],[3],[4,5,6]]}`, "m", `tokens {}`, 3},
		{"options", `{"model":"text-embedding-3-small","input":"x","dimensions":256,"encoding_format":"base64","user":"u-1"}`,
			"text-embedding-3-small", `text {"dimensions":256,"encoding_format":"base64","user":"u-1"}`, 1},
		{"options in another order, spaced", "{ \"user\" : \"u-1\",\n \"encoding_format\":\"base64\", \"input\": [\"x\", \"y\"], \"dimensions\": 256, \"model\": \"text-embedding-3-small\" }",
			"text-embedding-3-small", `text {"dimensions":256,"encoding_format":"base64","user":"u-1"}`, 2},
		{"unknown fields, nested keys sorted", `{"model":"m","input":"x","extra":{"b":[1, {"d":2,"c":3}],"a":null}}`,
			"m", `text {"extra":{"a":null,"b":[1,{"c":3,"d":2}]}}`, 1},
		{"repeated key: the last counts", `{"model":"m","input":"x","user":"a","user":"b"}`, "m", `text {"user":"b"}`, 1},
		{"strings as written", `{"model":"m","input":"x","user":"<\u00e9>"}`, "m", `text {"user":"<\u00e9>"}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model, options, inputs, err := ParseEmbeddings([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if model != tc.model || options != tc.options || inputs != tc.inputs {
				t.Fatalf("got %q, %q, %d; want %q, %q, %d", model, options, inputs, tc.model, tc.options, tc.inputs)
			}
		})
	}
}

func TestParseEmbeddingsOptionsKey(t *testing.T) {
	key := func(body string) string {
		t.Helper()
		_, options, _, err := ParseEmbeddings([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return options
	}
	base := key(`{"model":"m","input":"x","dimensions":256,"user":"u"}`)
	for _, same := range []string{
		`{"user":"u","dimensions":256,"input":["y","z"],"model":"m"}`,
		`{"model":"other","input":"x","dimensions":256,"user":"u"}`, // the model is not part of the key
	} {
		if got := key(same); got != base {
			t.Errorf("%s: key %q, want %q", same, got, base)
		}
	}
	for _, differs := range []string{
		`{"model":"m","input":[1,2],"dimensions":256,"user":"u"}`, // tokens, not text
		`{"model":"m","input":"x","dimensions":512,"user":"u"}`,
		`{"model":"m","input":"x","dimensions":256,"user":"v"}`,
		`{"model":"m","input":"x","dimensions":256}`,
		`{"model":"m","input":"x","dimensions":256,"user":"u","encoding_format":"float"}`,
	} {
		if got := key(differs); got == base {
			t.Errorf("%s: same key as the base, %q", differs, got)
		}
	}
}

func TestParseEmbeddingsErrors(t *testing.T) {
	for _, tc := range []struct{ body, field, problem string }{
		{``, "", "not valid JSON"},
		{`null`, "", "not a JSON object"},
		{`[]`, "", "not a JSON object"},
		{`{"model":"m","input":"x"`, "", "not valid JSON"},
		{`{"model":"m","input":"x"} {}`, "", "not valid JSON"},
		{`{"input":"x"}`, "model", "missing"},
		{`{"model":null,"input":"x"}`, "model", "missing"},
		{`{"model":7,"input":"x"}`, "model", "must be a string"},
		{`{"model":"","input":"x"}`, "model", "must not be empty"},
		{`{"model":"m"}`, "input", "missing"},
		{`{"model":"m","input":null}`, "input", "missing"},
		{`{"model":"m","input":""}`, "input", "empty string"},
		{`{"model":"m","input":[]}`, "input", "empty array"},
		{`{"model":"m","input":["a",""]}`, "input", "element 1 is an empty string"},
		{`{"model":"m","input":[[]]}`, "input", "element 0 is an empty token id array"},
		{`{"model":"m","input":[[1],[]]}`, "input", "element 1 is an empty token id array"},
		{`{"model":"m","input":7}`, "input", "must be a string"},
		{`{"model":"m","input":{"a":1}}`, "input", "must be a string"},
		{`{"model":"m","input":true}`, "input", "must be a string"},
		{`{"model":"m","input":["a",1]}`, "input", "element 1 is not a string"},
		{`{"model":"m","input":[1,"a"]}`, "input", "element 1 is not an integer"},
		{`{"model":"m","input":[1,2.5]}`, "input", "element 1 is not an integer"},
		{`{"model":"m","input":[1e3]}`, "input", "element 0 is not an integer"},
		{`{"model":"m","input":[[1],2]}`, "input", "element 1 is not a token id array"},
		{`{"model":"m","input":[[1],["a"]]}`, "input", "element 1: token 0 is not an integer"},
		{`{"model":"m","input":[[[1]]]}`, "input", "element 0: token 0 is not an integer"},
		{`{"model":"m","input":[null]}`, "input", "must be a string"},
		{`{"model":"m","input":"x","deep":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "deep", "nested deeper"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			_, _, _, err := ParseEmbeddings([]byte(tc.body))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Problem, tc.problem) {
				t.Fatalf("got field %q, problem %q; want %q, %q", fe.Field, fe.Problem, tc.field, tc.problem)
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("%q does not name the field", err)
			}
		})
	}
}

// texts gives each test input a distinct text.
func texts(prefix string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return s
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// embeddingOf is the fake upstream's embedding for an input (its raw JSON):
// derived from the input, so a mix-up shows; spelled in forms a float
// re-encoding would change ("1e-05", "-0.0", trailing zeros).
func embeddingOf(input json.RawMessage, b64 bool, dims int) json.RawMessage {
	h := fnv.New64a()
	h.Write(input)
	seed := h.Sum64()
	if b64 {
		buf := make([]byte, 4*dims)
		for i := range dims {
			v := float32(int64(seed>>uint(i%32)&0xffff)-0x8000) / 0x8000
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		return json.RawMessage(strconv.Quote(base64.StdEncoding.EncodeToString(buf)))
	}
	var b strings.Builder
	b.WriteString("[-0.0,1e-05")
	for i := 2; i < dims; i++ {
		fmt.Fprintf(&b, ",%.10f", float64(int64(seed>>uint(i%32)&0xffff)-0x8000)/0x8000)
	}
	b.WriteString("]")
	return json.RawMessage(b.String())
}

// fakeAnswer answers a combined body as OpenAI does, with the data entries in
// the given order of indexes (nil: in order) and one prompt token per 2 bytes
// of input.
func fakeAnswer(t testing.TB, combined []byte, order []int, extra string) []byte {
	t.Helper()
	var req struct {
		Model          string            `json:"model"`
		Input          []json.RawMessage `json:"input"`
		EncodingFormat string            `json:"encoding_format"`
	}
	if err := json.Unmarshal(combined, &req); err != nil {
		t.Fatalf("combined body %s: %v", combined, err)
	}
	if order == nil {
		order = make([]int, len(req.Input))
		for i := range order {
			order[i] = i
		}
	}
	tokens := 0
	for _, in := range req.Input {
		tokens += len(in) / 2
	}
	var b bytes.Buffer
	b.WriteString(`{"object":"list","data":[`)
	for n, i := range order {
		if n > 0 {
			b.WriteString(",\n  ")
		}
		fmt.Fprintf(&b, `{"object":"embedding","index":%d,"embedding":%s}`, i, embeddingOf(req.Input[i], req.EncodingFormat == "base64", 8))
	}
	fmt.Fprintf(&b, `],"model":%q%s,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, req.Model, extra, tokens, tokens)
	return b.Bytes()
}

// splitAnswer is one caller's answer, decoded with the embeddings kept raw.
type splitAnswer struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func decodeAnswer(t testing.TB, b []byte) splitAnswer {
	t.Helper()
	var a splitAnswer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return a
}

// callerInputs is each body's inputs as the upstream sees them.
func callerInputs(t testing.TB, body []byte) []json.RawMessage {
	t.Helper()
	req, err := parseEmbeddings(body)
	if err != nil {
		t.Fatal(err)
	}
	return req.inputs
}

func TestCombineSplitRoundTrip(t *testing.T) {
	reversed := func(n int) []int {
		o := make([]int, n)
		for i := range o {
			o[i] = n - 1 - i
		}
		return o
	}
	scrambled := []int{7, 2, 9, 0, 4, 1, 8, 3, 6, 5}
	for _, tc := range []struct {
		name   string
		bodies []string
		order  []int
	}{
		{"texts 1,3,1,5", []string{
			`{"model":"text-embedding-3-small","input":"solo"}`,
			`{"input":["a","b","c"],"model":"text-embedding-3-small"}`,
			`{"model":"text-embedding-3-small","input":["one"]}`,
			string(mustJSON(t, map[string]any{"model": "text-embedding-3-small", "input": texts("five", 5)})),
		}, nil},
		{"texts 1,3,1,5 answered backwards", []string{
			`{"model":"m","input":"solo","dimensions":8}`,
			`{"model":"m","input":["a","b","c"],"dimensions":8}`,
			`{"model":"m","input":"unicode: é ✓ \"quoted\"","dimensions":8}`,
			string(mustJSON(t, map[string]any{"model": "m", "input": texts("five", 5), "dimensions": 8})),
		}, reversed(10)},
		{"tokens 1,3,1,5 scrambled", []string{
			`{"model":"m","input":[1,2,3]}`,
			`{"model":"m","input":[[4],[5,6],[7,8,9]]}`,
			`{"model":"m","input":[[10, 11]]}`,
			`{"model":"m","input":[[12],[13],[14],[15],[16]]}`,
		}, scrambled},
		{"base64 1,3,1,5 scrambled", []string{
			`{"model":"m","input":"solo","encoding_format":"base64","user":"u"}`,
			`{"user":"u","model":"m","input":["a","b","c"],"encoding_format":"base64"}`,
			`{"model":"m","input":["x"],"encoding_format":"base64","user":"u"}`,
			string(mustJSON(t, map[string]any{"model": "m", "input": texts("five", 5), "encoding_format": "base64", "user": "u"})),
		}, scrambled},
		{"one body", []string{`{"model":"m","input":["a","b"]}`}, []int{1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bodies := make([][]byte, len(tc.bodies))
			for i, b := range tc.bodies {
				bodies[i] = []byte(b)
			}
			combined, counts, err := Combine(bodies)
			if err != nil {
				t.Fatal(err)
			}
			// The combined body batches like its parts and carries all inputs.
			model, options, n, err := ParseEmbeddings(combined)
			wantModel, wantOptions, _, _ := ParseEmbeddings(bodies[0])
			total := 0
			for i, b := range bodies {
				_, _, want, _ := ParseEmbeddings(b)
				if counts[i] != want {
					t.Fatalf("counts %v: body %d has %d inputs", counts, i, want)
				}
				total += want
			}
			if err != nil || model != wantModel || options != wantOptions || n != total {
				t.Fatalf("combined %s parses as %q, %q, %d, %v", combined, model, options, n, err)
			}

			answer := fakeAnswer(t, combined, tc.order, `,"system_fingerprint":"fp_1"`)
			var whole splitAnswer
			if err := json.Unmarshal(answer, &whole); err != nil {
				t.Fatal(err)
			}
			parts, err := Split(answer, counts)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != len(bodies) {
				t.Fatalf("%d parts for %d bodies", len(parts), len(bodies))
			}
			prompt, totalTokens := 0, 0
			for k, part := range parts {
				var a splitAnswer
				if err := json.Unmarshal(part, &a); err != nil {
					t.Fatalf("part %d %s: %v", k, part, err)
				}
				var fields map[string]json.RawMessage
				json.Unmarshal(part, &fields)
				if string(fields["system_fingerprint"]) != `"fp_1"` || a.Object != "list" || a.Model != wantModel {
					t.Fatalf("part %d lost a top-level field: %s", k, part)
				}
				inputs := callerInputs(t, bodies[k])
				if len(a.Data) != len(inputs) {
					t.Fatalf("part %d has %d entries for %d inputs", k, len(a.Data), len(inputs))
				}
				for j, d := range a.Data {
					want := embeddingOf(inputs[j], strings.Contains(tc.bodies[0], "base64"), 8)
					if d.Index != j || d.Object != "embedding" || !bytes.Equal(d.Embedding, want) {
						t.Fatalf("part %d entry %d: index %d, embedding %s; want index %d, %s", k, j, d.Index, d.Embedding, j, want)
					}
				}
				prompt += a.Usage.PromptTokens
				totalTokens += a.Usage.TotalTokens
			}
			if prompt != whole.Usage.PromptTokens || totalTokens != whole.Usage.TotalTokens {
				t.Fatalf("usage sums to %d/%d, want %d/%d", prompt, totalTokens, whole.Usage.PromptTokens, whole.Usage.TotalTokens)
			}
		})
	}
}

func TestCombineBody(t *testing.T) {
	combined, counts, err := Combine([][]byte{
		[]byte(`{"input":"a","model":"m","dimensions":256,"encoding_format":"float"}`),
		[]byte(`{"model":"m","encoding_format":"float","dimensions":256,"input":["b","c"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","dimensions":256,"encoding_format":"float","input":["a","b","c"]}`
	if string(combined) != want || !slices.Equal(counts, []int{1, 2}) {
		t.Fatalf("got %s %v, want %s [1 2]", combined, counts, want)
	}
	combined, counts, err = Combine([][]byte{
		[]byte(`{"model":"m","input":[1,2]}`),
		[]byte(`{"model":"m","input":[[3],[4, 5]]}`),
	})
	if want := `{"model":"m","input":[[1,2],[3],[4, 5]]}`; err != nil || string(combined) != want || !slices.Equal(counts, []int{1, 2}) {
		t.Fatalf("got %s %v %v, want %s [1 2]", combined, counts, err, want)
	}
}

func TestCombineErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bodies []string
		is     error
		text   string
	}{
		{"no bodies", nil, nil, "no bodies"},
		{"bad body", []string{`{"model":"m","input":"a"}`, `{"model":"m"}`}, nil, "body 1: embeddings request: input: missing"},
		{"other model", []string{`{"model":"m","input":"a"}`, `{"model":"n","input":"b"}`}, ErrMismatch, "body 1"},
		{"other options", []string{`{"model":"m","input":"a"}`, `{"model":"m","input":"b","dimensions":3}`}, ErrMismatch, "body 1"},
		{"texts and tokens", []string{`{"model":"m","input":"a"}`, `{"model":"m","input":[1]}`}, ErrMismatch, "body 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bodies [][]byte
			for _, b := range tc.bodies {
				bodies = append(bodies, []byte(b))
			}
			combined, counts, err := Combine(bodies)
			if err == nil || combined != nil || counts != nil {
				t.Fatalf("got %s %v %v, want an error", combined, counts, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%q does not say %q", err, tc.text)
			}
		})
	}
}

func TestSplitOutOfOrderKeepsEntriesAsWritten(t *testing.T) {
	answer := `{"object":"list","data":[
		{"object":"embedding","index":2,"embedding":"AAAgQQ=="},
		{"object":"embedding","embedding":[1.50, -0.0, 1e-05],"index":0},
		{"index":1,"object":"embedding","embedding":"AACAPw=="}
	],"model":"m","usage":{"prompt_tokens":5,"total_tokens":5}}`
	parts, err := Split([]byte(answer), []int{2, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"object":"list","data":[{"object":"embedding","embedding":[1.50, -0.0, 1e-05],"index":0},{"index":1,"object":"embedding","embedding":"AACAPw=="}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}`,
		`{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAgQQ=="}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}`,
	}
	for k := range want {
		if string(parts[k]) != want[k] {
			t.Errorf("part %d:\n got %s\nwant %s", k, parts[k], want[k])
		}
	}
}

func TestSplitUsage(t *testing.T) {
	answer := func(usage string) []byte {
		return []byte(`{"object":"list","data":[` +
			`{"index":0,"embedding":[0]},{"index":1,"embedding":[0]},{"index":2,"embedding":[0]},` +
			`{"index":3,"embedding":[0]},{"index":4,"embedding":[0]},{"index":5,"embedding":[0]},` +
			`{"index":6,"embedding":[0]},{"index":7,"embedding":[0]},{"index":8,"embedding":[0]},` +
			`{"index":9,"embedding":[0]}],"model":"m"` + usage + `}`)
	}
	for _, tc := range []struct {
		name   string
		usage  string
		counts []int
		want   []string // each part's usage
	}{
		{"largest remainder", `,"usage":{"prompt_tokens":23,"total_tokens":23}`, []int{1, 3, 1, 5}, []string{
			// 2.3, 6.9, 2.3, 11.5: floors 2, 6, 2, 11, and the 2 left go to .9 and .5
			`{"prompt_tokens":2,"total_tokens":2}`, `{"prompt_tokens":7,"total_tokens":7}`,
			`{"prompt_tokens":2,"total_tokens":2}`, `{"prompt_tokens":12,"total_tokens":12}`}},
		{"ties go to the earlier caller", `,"usage":{"prompt_tokens":11,"total_tokens":0}`, []int{5, 5}, []string{
			`{"prompt_tokens":6,"total_tokens":0}`, `{"prompt_tokens":5,"total_tokens":0}`}},
		{"fewer tokens than callers", `,"usage":{"prompt_tokens":2}`, []int{3, 3, 4}, []string{
			`{"prompt_tokens":1}`, `{"prompt_tokens":0}`, `{"prompt_tokens":1}`}},
		{"nested counts split, the rest copied", `,"usage":{"prompt_tokens":10,"details":{"cached_tokens":4,"tier":"x"},"cost":0.5,"n":-3}`, []int{2, 8}, []string{
			`{"prompt_tokens":2,"details":{"cached_tokens":1,"tier":"x"},"cost":0.5,"n":-3}`,
			`{"prompt_tokens":8,"details":{"cached_tokens":3,"tier":"x"},"cost":0.5,"n":-3}`}},
		{"huge counts", `,"usage":{"total_tokens":18446744073709551615}`, []int{3, 7}, []string{
			`{"total_tokens":5534023222112865485}`, `{"total_tokens":12912720851596686130}`}},
		{"null usage copied", `,"usage":null`, []int{4, 6}, []string{`null`, `null`}},
		{"no usage", ``, []int{10}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := Split(answer(tc.usage), tc.counts)
			if err != nil {
				t.Fatal(err)
			}
			for k, part := range parts {
				var fields map[string]json.RawMessage
				if err := json.Unmarshal(part, &fields); err != nil {
					t.Fatal(err)
				}
				got, ok := fields["usage"]
				if tc.want == nil {
					if ok {
						t.Fatalf("part %d has usage %s", k, got)
					}
					continue
				}
				if string(got) != tc.want[k] {
					t.Errorf("part %d: usage %s, want %s", k, got, tc.want[k])
				}
			}
		})
	}
}

func TestApportionSumsExactly(t *testing.T) {
	for _, counts := range [][]int{{1}, {1, 1, 1}, {1, 3, 1, 5}, {7, 2, 2, 2, 9, 1}, {1000, 1}} {
		total := 0
		for _, c := range counts {
			total += c
		}
		for _, n := range []uint64{0, 1, 2, 3, 7, 99, 1000, 123457, math.MaxUint64, math.MaxUint64 - 5} {
			shares := apportion(n, counts, total)
			var sum uint64
			for k, s := range shares {
				sum += s
				exact := float64(n) * float64(counts[k]) / float64(total)
				if math.Abs(float64(s)-exact) > 1+exact*1e-12 {
					t.Errorf("apportion(%d, %v)[%d] = %d, exact share %g", n, counts, k, s, exact)
				}
			}
			if sum != n {
				t.Errorf("apportion(%d, %v) = %v sums to %d", n, counts, shares, sum)
			}
		}
	}
}

func TestSplitErrors(t *testing.T) {
	entries := func(idx ...string) string {
		var b []string
		for _, i := range idx {
			b = append(b, `{"object":"embedding","index":`+i+`,"embedding":[0.1]}`)
		}
		return `{"object":"list","data":[` + strings.Join(b, ",") + `],"model":"m"}`
	}
	for _, tc := range []struct {
		name, answer string
		counts       []int
		bad          bool // an ErrBadAnswer
		text         string
	}{
		{"no callers", entries("0"), nil, false, "no callers"},
		{"zero inputs", entries("0"), []int{1, 0}, false, "caller 1 has 0 inputs"},
		{"negative inputs", entries("0"), []int{-1, 2}, false, "caller 0 has -1 inputs"},
		{"not JSON", `{"object":`, []int{1}, true, "not valid JSON"},
		{"not an object", `[1]`, []int{1}, true, "not a JSON object"},
		{"trailing data", entries("0") + `{}`, []int{1}, true, "not valid JSON"},
		{"error answer", `{"error":{"message":"bad"}}`, []int{1}, true, "no data"},
		{"data not a list", `{"data":{}}`, []int{1}, true, "data is not an array"},
		{"too few entries", entries("0", "1"), []int{1, 2}, true, "2 entries for 3 inputs"},
		{"too many entries", entries("0", "1", "2"), []int{1, 1}, true, "3 entries for 2 inputs"},
		{"index missing", `{"data":[{"embedding":[1]}]}`, []int{1}, true, "data[0] has no index"},
		{"entry not an object", `{"data":[[1]]}`, []int{1}, true, "data[0]"},
		{"index not an integer", entries("0", "1.0"), []int{2}, true, "index 1.0 is not an integer"},
		{"index a string", entries(`"0"`), []int{1}, true, "is not an integer"},
		{"index out of range", entries("0", "2"), []int{1, 1}, true, "index 2 is outside [0, 2)"},
		{"negative index", entries("-1", "0"), []int{2}, true, "index -1 is outside"},
		{"index twice: one not covered", entries("1", "0", "1"), []int{3}, true, "index 1 appears twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := Split([]byte(tc.answer), tc.counts)
			if err == nil || parts != nil {
				t.Fatalf("got %q, %v; want an error", parts, err)
			}
			if errors.Is(err, ErrBadAnswer) != tc.bad {
				t.Fatalf("%v: errors.Is(ErrBadAnswer) = %v", err, !tc.bad)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%q does not say %q", err, tc.text)
			}
		})
	}
}

func FuzzParseEmbeddings(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"hello"}`,
		`{"model":"m","input":["a","b"],"dimensions":256,"encoding_format":"base64","user":"u"}`,
		`{"model":"m","input":[1,2,3]}`,
		`{"model":"m","input":[[1],[2,3]],"x":{"b":[1,{"a":null}]}}`,
		`{"model":"m","input":["a",1]}`,
		`{"model":"","input":[]}`,
		`null`, ``, `[`,
		"{\"model\":\"0\",\"input\":[\"0\"],\"\x87\":\"\"}", // a key that is not UTF-8
		`{"model":"m","input":"x","\ud800\"<":1,"\u00e9":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		model, options, inputs, err := ParseEmbeddings(body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			return
		}
		if model == "" || inputs < 1 || options == "" {
			t.Fatalf("%q: %q, %q, %d", body, model, options, inputs)
		}
		// A body combines with itself into one that batches the same way.
		combined, counts, err := Combine([][]byte{body, body})
		if err != nil {
			t.Fatalf("%q: Combine: %v", body, err)
		}
		m2, o2, n2, err := ParseEmbeddings(combined)
		if err != nil || m2 != model || o2 != options || n2 != 2*inputs || !slices.Equal(counts, []int{inputs, inputs}) {
			t.Fatalf("%q combined into %q: %q, %q, %d, %v", body, combined, m2, o2, n2, err)
		}
	})
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte(`{"object":"list","data":[{"object":"embedding","index":1,"embedding":"AAAgQQ=="},{"object":"embedding","index":0,"embedding":[0.5]}],"model":"m","usage":{"prompt_tokens":5,"total_tokens":5}}`), []byte{1, 1})
	f.Add([]byte(`{"data":[{"index":0}],"usage":{"a":{"b":{"c":{"d":{"e":7}}}}}}`), []byte{1})
	f.Add([]byte(`{"data":[{"index":0},{"index":0}]}`), []byte{2})
	f.Add([]byte(`{"data":[]}`), []byte{})
	f.Fuzz(func(t *testing.T, answer, countBytes []byte) {
		counts := make([]int, len(countBytes))
		for i, c := range countBytes {
			counts[i] = int(c%8) - 1 // -1 and 0 are invalid
		}
		parts, err := Split(answer, counts)
		if err != nil {
			return
		}
		var whole struct {
			Usage map[string]json.RawMessage `json:"usage"`
		}
		json.Unmarshal(answer, &whole)
		sums := map[string]uint64{}
		if len(parts) != len(counts) {
			t.Fatalf("%d parts for %d callers", len(parts), len(counts))
		}
		for k, part := range parts {
			var a struct {
				Data []struct {
					Index int `json:"index"`
				} `json:"data"`
				Usage map[string]json.RawMessage `json:"usage"`
			}
			if err := json.Unmarshal(part, &a); err != nil {
				t.Fatalf("part %d %q of %q: %v", k, part, answer, err)
			}
			if len(a.Data) != counts[k] {
				t.Fatalf("part %d has %d entries for %d inputs", k, len(a.Data), counts[k])
			}
			for j, d := range a.Data {
				if d.Index != j {
					t.Fatalf("part %d entry %d has index %d", k, j, d.Index)
				}
			}
			for key, v := range a.Usage {
				if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
					sums[key] += n
				}
			}
		}
		for key, v := range whole.Usage {
			if n, err := strconv.ParseUint(string(v), 10, 64); err == nil && sums[key] != n {
				t.Fatalf("usage %s: parts sum to %d, want %d", key, sums[key], n)
			}
		}
	})
}

// BenchmarkSplit cuts an answer of 10 inputs of 1536 dimensions (as
// text-embedding-3-small answers) for callers of 1, 3, 1 and 5 inputs.
func BenchmarkSplit(b *testing.B) {
	for _, format := range []string{"float", "base64"} {
		b.Run(format, func(b *testing.B) {
			var bodies [][]byte
			for i, n := range []int{1, 3, 1, 5} {
				bodies = append(bodies, mustJSON(b, map[string]any{
					"model": "text-embedding-3-small", "input": texts(fmt.Sprint("caller", i), n), "encoding_format": format,
				}))
			}
			combined, counts, err := Combine(bodies)
			if err != nil {
				b.Fatal(err)
			}
			var req struct{ Input []json.RawMessage }
			json.Unmarshal(combined, &req)
			var ans bytes.Buffer
			ans.WriteString(`{"object":"list","data":[`)
			for i, in := range req.Input {
				if i > 0 {
					ans.WriteByte(',')
				}
				fmt.Fprintf(&ans, `{"object":"embedding","index":%d,"embedding":%s}`, i, embeddingOf(in, format == "base64", 1536))
			}
			ans.WriteString(`],"model":"text-embedding-3-small","usage":{"prompt_tokens":40,"total_tokens":40}}`)
			answer := ans.Bytes()
			b.SetBytes(int64(len(answer)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Split(answer, counts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
