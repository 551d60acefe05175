package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestAppendCanonical(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`{"b": 1, "a": 2}`, `{"a":2,"b":1}`, true},
		{" {\n\t\"model\" : \"m\" ,\r\n \"messages\" : [ {\"role\":\"user\", \"content\":\"a  b\"} ] } ", `{"messages":[{"content":"a  b","role":"user"}],"model":"m"}`, true},
		{`[3, 1, {"z": [], "y": {}}]`, `[3,1,{"y":{},"z":[]}]`, true},
		{`{"n": 1.50, "big": 12345678901234567890123, "e": 1E+2}`, `{"big":12345678901234567890123,"e":1E+2,"n":1.50}`, true},
		{`{"s": "\u00e9\n"}`, `{"s":"\u00e9\n"}`, true},
		{`{"b":1,"a":1,"b":2}`, `{"a":1,"b":1,"b":2}`, true}, // repeated keys keep their order: the last still wins
		{`{"\u0062":1,"a":2}`, `{"a":2,"\u0062":1}`, true},   // sorted by the unescaped key, written as sent
		{` "x" `, `"x"`, true},
		{`null`, `null`, true},
		{`{"a":1,}`, ``, false},
		{`not json`, ``, false},
		{``, ``, false},
	} {
		got, ok := AppendCanonical([]byte("prefix:"), []byte(tc.in))
		want := "prefix:" + tc.want
		if string(got) != want || ok != tc.ok {
			t.Errorf("AppendCanonical(%q) = %q, %v; want %q, %v", tc.in, got, ok, want, tc.ok)
		}
	}
}

// FuzzAppendCanonical: the canonical form exists exactly for valid JSON,
// is valid JSON that decodes to the same value, and is its own canonical
// form.
func FuzzAppendCanonical(f *testing.F) {
	for _, seed := range []string{
		`{"b":1,"a":[{"d":null,"c":true}]}`, ` { "x" : "y\"z" } `, `[1, 2.50, -0e0]`,
		`{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, "{\"\xff\":1,\"a\":2}", `{`, `[}`, ``, `1 2`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, ok := AppendCanonical(nil, data)
		if ok != json.Valid(data) {
			t.Fatalf("%q: ok = %v, json.Valid = %v", data, ok, !ok)
		}
		if !ok {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%q: canonical form %q is not valid JSON", data, out)
		}
		if again, _ := AppendCanonical(nil, out); !bytes.Equal(again, out) {
			t.Fatalf("%q: canonical %q, then %q", data, out, again)
		}
		if a, b := decodeNumbers(t, data), decodeNumbers(t, out); !reflect.DeepEqual(a, b) {
			t.Fatalf("%q decodes to %v, its canonical form %q to %v", data, a, out, b)
		}
	})
}

func decodeNumbers(t *testing.T, data []byte) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	return v
}

func BenchmarkAppendCanonical(b *testing.B) {
	body := []byte(`{"model": "gpt-4o", "temperature": 0, "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Summarise the design of deer in three sentences."}], "max_tokens": 256}`)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendCanonical(buf[:0], body)
	}
}
