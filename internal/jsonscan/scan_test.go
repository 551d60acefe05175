package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// members lists what a walk reports, in order, or its error.
func members(walk func([]byte, func([]byte, int, int)) error, data []byte) (out []string, err error) {
	err = walk(data, func(key []byte, start, end int) {
		out = append(out, fmt.Sprintf("%q=%d:%d", key, start, end))
	})
	return out, err
}

// FuzzWalk checks the byte scan against the json.Decoder walk it replaced:
// the same members at the same offsets, and an error for the same bodies.
// On valid JSON, Find must agree with the walk's last member of a key,
// RawMembers with the walk and Elements with the decoder.
func FuzzWalk(f *testing.F) {
	for _, seed := range []string{
		`{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`,
		` { "model" : "a\"b" , "stream" : true , "n" : -1.5e3 , "x" : null } `,
		`{"mod\u0065l":"x","k\\":{"a":[1,"]}",{"b":"}"}]},"e":""}`,
		`{"a":1}{"b":2}`, `{"a":1,}`, `[]`, `"x"`, `null`, ``, `   `, `{`, `{"a"}`,
		"{\"\xff\":1}", `{}`, `{"a":{}}`, `{"a":[]}`, `{"a":1 }`, "{\"a\":\t1\n}",
		`{"model":1,"model":2}`,
		` [ 1 , "a]" , {"b":[2,"}"]} , [] , null ] `, `[1,]`, `[{]`, `[1 2]`, `["\"",true]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRaw(t, data)
		got, gotErr := members(Walk, data)
		want, wantErr := members(decodeWalk, data)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: scan error %v, decoder error %v", data, gotErr, wantErr)
		}
		if gotErr != nil {
			Find(data, "model") // must not panic; its answer is not specified
			return
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%q:\nscan    %v\ndecoder %v", data, got, want)
		}
		var last []byte
		_ = Members(data, func(key, value []byte) {
			if string(key) == "model" {
				last = value
			}
		})
		if v, ok := Find(data, "model"); ok != (last != nil) || string(v) != string(last) {
			t.Fatalf("%q: Find = %q, %v; the walk's last model is %q", data, v, ok, last)
		}
	})
}

// checkRaw holds RawMembers and Elements, on valid JSON, to Members and
// to the decoder; on anything else they must only stay within data.
func checkRaw(t *testing.T, data []byte) {
	var raw []string
	memErr := RawMembers(data, func(key, value []byte) {
		raw = append(raw, fmt.Sprintf("%q=%s", unquoteKey(key), value))
	})
	var elems [][]byte
	elemErr := Elements(data, func(value []byte) { elems = append(elems, value) })
	if !json.Valid(data) {
		return
	}
	var want []string
	wantErr := Members(data, func(key, value []byte) {
		want = append(want, fmt.Sprintf("%q=%s", key, value))
	})
	if (memErr == nil) != (wantErr == nil) || fmt.Sprint(raw) != fmt.Sprint(want) {
		t.Fatalf("%q:\nRawMembers %v, %v\nMembers    %v, %v", data, raw, memErr, want, wantErr)
	}
	isArray := data[skipSpace(data, 0)] == '['
	if isArray != (elemErr == nil) {
		t.Fatalf("%q: Elements error %v", data, elemErr)
	}
	if !isArray {
		return
	}
	var decoded []json.RawMessage
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	if len(elems) != len(decoded) {
		t.Fatalf("%q: Elements gives %q, the decoder %q", data, elems, decoded)
	}
	for i := range elems {
		if !bytes.Equal(elems[i], decoded[i]) {
			t.Fatalf("%q: Elements gives %q, the decoder %q", data, elems, decoded)
		}
	}
}

func TestWalkErrors(t *testing.T) {
	for _, tc := range []struct {
		body    string
		notObj  bool // ErrNotObject rather than a syntax error
		wantErr bool
	}{
		{`{"a":1}`, false, false},
		{`[1]`, true, true},
		{`"x"`, true, true},
		{``, true, true},
		{`{"a":1} x`, false, true},
		{`{"a":}`, false, true},
	} {
		err := Walk([]byte(tc.body), func([]byte, int, int) {})
		if (err != nil) != tc.wantErr || errors.Is(err, ErrNotObject) != tc.notObj {
			t.Errorf("Walk(%q) = %v, want error %v (not an object: %v)", tc.body, err, tc.wantErr, tc.notObj)
		}
	}
}

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		body, key, want string
		ok              bool
	}{
		{`{"temperature": 0, "model": "m"}`, "temperature", "0", true},
		{`{"model":"m","temperature":0.7}`, "temperature", "0.7", true},
		{`{"model":"m"}`, "temperature", "", false},
		{`{"nested":{"temperature":0}}`, "temperature", "", false},
		{`{"t\u0065mperature": 0}`, "temperature", "0", true},
		{`{"temperature":1,"temperature":0}`, "temperature", "0", true},
		{`{"temperature": null}`, "temperature", "null", true},
		{`[{"temperature": 0}]`, "temperature", "", false},
		{`{"s":"\"temperature\": 0"}`, "temperature", "", false},
		{`{"a":[1,{"temperature":0}],"b":"}"}`, "temperature", "", false},
		{`{}`, "temperature", "", false},
		// Malformed structure is refused even past the member.
		{`{"temperature": 0`, "temperature", "", false},
		{`{"temperature": 0,}`, "temperature", "", false},
		{`{"temperature": 0 "x": 1}`, "temperature", "", false},
		{`{"temperature" 0}`, "temperature", "", false},
		{`{"temperature":}`, "temperature", "", false},
		{`{"temperature":0,"s":"unterminated}`, "temperature", "", false},
		{`{"temperature":0,"a":[1,2}`, "temperature", "", false},
		{`{temperature:0}`, "temperature", "", false},
		{`{"t\u00":0}`, "t", "", false},
	} {
		v, ok := Find([]byte(tc.body), tc.key)
		if string(v) != tc.want || ok != tc.ok {
			t.Errorf("Find(%q, %q) = %q, %v; want %q, %v", tc.body, tc.key, v, ok, tc.want, tc.ok)
		}
	}
}

func TestPlainString(t *testing.T) {
	for _, tc := range []struct {
		tok, want string
		ok        bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`"a\"b"`, "", false},
		{"\"\xff\"", "", false},
		{`abc`, "", false},
		{`"`, "", false},
	} {
		s, ok := PlainString([]byte(tc.tok))
		if s != tc.want || ok != tc.ok {
			t.Errorf("PlainString(%q) = %q, %v; want %q, %v", tc.tok, s, ok, tc.want, tc.ok)
		}
	}
}

// TestFindAllocs: Find is on every chat request's path.
func TestFindAllocs(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}`)
	if n := testing.AllocsPerRun(100, func() { Find(body, "temperature") }); n != 0 {
		t.Errorf("Find allocates %v times", n)
	}
}

func TestRawMembers(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string // key token=value, in order
		err  error
	}{
		{`{}`, nil, nil},
		{` { "a" : 1 , "b":[1, "]"] } `, []string{`"a"=1`, `"b"=[1, "]"]`}, nil},
		{`{"\u0061":{"x":"}"},"a":null,"a":2}`, []string{`"\u0061"={"x":"}"}`, `"a"=null`, `"a"=2`}, nil}, // tokens as written, repeats kept
		{"{\"\xff\":true}", []string{"\"\xff\"=true"}, nil},
		{`[{"a":1}]`, nil, ErrNotObject},
		{``, nil, ErrNotObject},
		// A break in the structure ends the walk, after the members before it.
		{`{"a":1,}`, []string{`"a"=1`}, ErrMalformed},
		{`{"a":1 "b":2}`, []string{`"a"=1`}, ErrMalformed},
		{`{"a":1} x`, []string{`"a"=1`}, ErrMalformed},
		{`{"a":1`, []string{`"a"=1`}, ErrMalformed},
		{`{"a" 1}`, nil, ErrMalformed},
		{`{"a":}`, nil, ErrMalformed},
		{`{a:1}`, nil, ErrMalformed},
		{`{"a":"unterminated}`, nil, ErrMalformed},
		// What lies inside a value is not checked: brackets are counted, not matched.
		{`{"a":tru,"b":[}}`, []string{`"a"=tru`, `"b"=[}`}, nil},
		{`{"a":[1}`, []string{`"a"=[1}`}, ErrMalformed},
	} {
		var got []string
		err := RawMembers([]byte(tc.body), func(key, value []byte) {
			got = append(got, string(key)+"="+string(value))
			if cap(key) != len(key) || cap(value) != len(value) {
				t.Errorf("RawMembers(%q): %q=%q is not capped", tc.body, key, value)
			}
		})
		if !slices.Equal(got, tc.want) || err != tc.err {
			t.Errorf("RawMembers(%q) = %q, %v; want %q, %v", tc.body, got, err, tc.want, tc.err)
		}
	}
}

func TestElements(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string
		err  error
	}{
		{`[]`, nil, nil},
		{" [ ]\n", nil, nil},
		{` [ 1 , "a]" , {"b":[2,"}"]} , [] , null ] `, []string{`1`, `"a]"`, `{"b":[2,"}"]}`, `[]`, `null`}, nil},
		{`[[1,2],[3]]`, []string{`[1,2]`, `[3]`}, nil},
		{`["\"]",-1.5e3]`, []string{`"\"]"`, `-1.5e3`}, nil},
		{`{"a":[1]}`, nil, ErrNotArray},
		{`"[1]"`, nil, ErrNotArray},
		{``, nil, ErrNotArray},
		// A break in the structure ends the walk, after the elements before it.
		{`[1,]`, []string{`1`}, ErrMalformed},
		{`[,1]`, nil, ErrMalformed},
		{`[1 2]`, []string{`1`}, ErrMalformed},
		{`[1`, []string{`1`}, ErrMalformed},
		{`[1] 2`, []string{`1`}, ErrMalformed},
		{`[1}`, []string{`1`}, ErrMalformed},
		{`["a]`, nil, ErrMalformed},
		{`[[1]`, []string{`[1]`}, ErrMalformed},
		// What lies inside an element is not checked.
		{`[nul,{]]`, []string{`nul`, `{]`}, nil},
	} {
		var got []string
		err := Elements([]byte(tc.body), func(value []byte) {
			got = append(got, string(value))
			if cap(value) != len(value) {
				t.Errorf("Elements(%q): %q is not capped", tc.body, value)
			}
		})
		if !slices.Equal(got, tc.want) || err != tc.err {
			t.Errorf("Elements(%q) = %q, %v; want %q, %v", tc.body, got, err, tc.want, tc.err)
		}
	}
}
