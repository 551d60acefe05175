package httpapi

import (
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

// FuzzWalkTopLevel checks the byte scan against the json.Decoder walk it
// replaced: the same members at the same offsets, and an error for the
// same bodies.
func FuzzWalkTopLevel(f *testing.F) {
	for _, seed := range []string{
		`{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}`,
		` { "model" : "a\"b" , "stream" : true , "n" : -1.5e3 , "x" : null } `,
		`{"mod\u0065l":"x","k\\":{"a":[1,"]}",{"b":"}"}]},"e":""}`,
		`{"a":1}{"b":2}`, `{"a":1,}`, `[]`, `"x"`, `null`, ``, `   `, `{`, `{"a"}`,
		"{\"\xff\":1}", `{}`, `{"a":{}}`, `{"a":[]}`, `{"a":1 }`, "{\"a\":\t1\n}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := members(walkTopLevel, data)
		want, wantErr := members(decodeTopLevel, data)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: scan error %v, decoder error %v", data, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%q:\nscan    %v\ndecoder %v", data, got, want)
		}
	})
}
