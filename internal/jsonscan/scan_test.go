package jsonscan

import (
	"errors"
	"fmt"
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
// On valid JSON, Find must agree with the walk's last member of a key.
func FuzzWalk(f *testing.F) {
	for _, seed := range []string{
		`{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`,
		` { "model" : "a\"b" , "stream" : true , "n" : -1.5e3 , "x" : null } `,
		`{"mod\u0065l":"x","k\\":{"a":[1,"]}",{"b":"}"}]},"e":""}`,
		`{"a":1}{"b":2}`, `{"a":1,}`, `[]`, `"x"`, `null`, ``, `   `, `{`, `{"a"}`,
		"{\"\xff\":1}", `{}`, `{"a":{}}`, `{"a":[]}`, `{"a":1 }`, "{\"a\":\t1\n}",
		`{"model":1,"model":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
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
