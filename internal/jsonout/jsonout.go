// Package jsonout encodes the JSON deer writes for people and programs to
// read: its HTTP answers (tasks, errors, /health, /metrics, /config,
// /faults) and the JSON its own types marshal themselves into.
//
// encoding/json escapes <, > and & by default (for JSON pasted into HTML),
// which turns "<redacted>" into "\u003credacted\u003e" and ">=" into
// "\u003e=" in error messages, and rewrites an upstream's own JSON body
// relayed inside a task result. Nothing deer answers is embedded in HTML
// (every answer is application/json), so it never escapes them.
package jsonout

import (
	"bytes"
	"encoding/json"
	"io"
)

// Marshal is json.Marshal without HTML escaping.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Write writes v to w as indented JSON (two spaces) and a newline, without
// HTML escaping: the shape of every deerd answer.
func Write(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
