package jsonout

import (
	"bytes"
	"encoding/json"
	"testing"
)

type marshaler struct{ S string }

// MarshalJSON goes through Marshal, as conf.Upstream's does: what it
// returns is kept as it is by an encoder that does not escape either.
func (m marshaler) MarshalJSON() ([]byte, error) {
	type plain marshaler
	return Marshal(plain(m))
}

func TestNothingIsHTMLEscaped(t *testing.T) {
	v := map[string]any{
		"token": "<redacted>",
		"msg":   "rate_limit.min_rate must be >= 1 & <= max_rate",
		"raw":   json.RawMessage(`{"html":"<b>x</b>"}`),
		"own":   marshaler{S: "a<b>&c"},
	}
	want := `{"msg":"rate_limit.min_rate must be >= 1 & <= max_rate","own":{"S":"a<b>&c"},"raw":{"html":"<b>x</b>"},"token":"<redacted>"}`
	got, err := Marshal(v)
	if err != nil || string(got) != want {
		t.Errorf("Marshal = %s, %v\nwant %s", got, err, want)
	}
	var buf bytes.Buffer
	if err := Write(&buf, v); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, buf.Bytes()); err != nil || compact.String() != want {
		t.Errorf("Write = %s (%v), want %s indented", buf.String(), err, want)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("{\n  \"msg\"")) || !bytes.HasSuffix(buf.Bytes(), []byte("}\n")) {
		t.Errorf("Write is not indented by two spaces with a final newline: %q", buf.String())
	}
}
