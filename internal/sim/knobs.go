package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Knobs are the simulator's live settings. The JSON form (GET and POST
// /_control) uses the snake_case names below, durations as Go duration
// strings ("300ms"); the deersim flags use the same names with dashes.
type Knobs struct {
	// Latency is slept before every answer (default 0).
	Latency time.Duration
	// ErrorRate is the fraction of requests answered 500, 0..1 (default 0).
	ErrorRate float64
	// Capacity is the admitted requests per second above which requests are
	// answered 429; 0 means unlimited (default 0).
	Capacity float64
	// RetryAfter is the Retry-After header of a 429, in seconds (default 1).
	RetryAfter int
	// HangRate is the fraction of requests that never get an answer, 0..1
	// (default 0).
	HangRate float64
	// ResetRate is the fraction of requests whose connection is reset, 0..1
	// (default 0).
	ResetRate float64
	// StreamChunks is the number of chat.completion.chunk events of a
	// streamed answer, 1..MaxStreamChunks (default 5).
	StreamChunks int
	// StreamInterval is the pause between two chunks (default 20ms).
	StreamInterval time.Duration
}

// MaxStreamChunks bounds Knobs.StreamChunks.
const MaxStreamChunks = 10000

// DefaultKnobs returns the knobs of an unconfigured simulator: no latency and
// no faults.
func DefaultKnobs() Knobs {
	return Knobs{RetryAfter: 1, StreamChunks: 5, StreamInterval: 20 * time.Millisecond}
}

// KnobError is a problem with one knob; Key is its JSON name.
type KnobError struct {
	Key    string
	Reason string
}

func (e *KnobError) Error() string {
	if e.Key == "" {
		return e.Reason
	}
	return e.Key + ": " + e.Reason
}

// Validate reports every knob out of range, as *KnobError values joined with
// errors.Join, or nil.
func (k Knobs) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KnobError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	if k.Latency < 0 {
		bad("latency", "must be >= 0, got %s", k.Latency)
	}
	for _, r := range []struct {
		key string
		v   float64
	}{{"error_rate", k.ErrorRate}, {"hang_rate", k.HangRate}, {"reset_rate", k.ResetRate}} {
		if !(r.v >= 0 && r.v <= 1) { // also rejects NaN
			bad(r.key, "must be between 0 and 1, got %v", r.v)
		}
	}
	if !(k.Capacity >= 0) || math.IsInf(k.Capacity, 0) {
		bad("capacity", "must be a finite number >= 0 (0 = unlimited), got %v", k.Capacity)
	}
	if k.RetryAfter < 0 {
		bad("retry_after", "must be >= 0 seconds, got %d", k.RetryAfter)
	}
	if k.StreamChunks < 1 || k.StreamChunks > MaxStreamChunks {
		bad("stream_chunks", "must be between 1 and %d, got %d", MaxStreamChunks, k.StreamChunks)
	}
	if k.StreamInterval < 0 {
		bad("stream_interval", "must be >= 0, got %s", k.StreamInterval)
	}
	return errors.Join(errs...)
}

// knobsJSON is the wire form of Knobs.
type knobsJSON struct {
	Latency        string  `json:"latency"`
	ErrorRate      float64 `json:"error_rate"`
	Capacity       float64 `json:"capacity"`
	RetryAfter     int     `json:"retry_after"`
	HangRate       float64 `json:"hang_rate"`
	ResetRate      float64 `json:"reset_rate"`
	StreamChunks   int     `json:"stream_chunks"`
	StreamInterval string  `json:"stream_interval"`
}

// MarshalJSON writes every knob, durations as Go duration strings.
func (k Knobs) MarshalJSON() ([]byte, error) {
	return json.Marshal(knobsJSON{
		Latency: k.Latency.String(), ErrorRate: k.ErrorRate, Capacity: k.Capacity,
		RetryAfter: k.RetryAfter, HangRate: k.HangRate, ResetRate: k.ResetRate,
		StreamChunks: k.StreamChunks, StreamInterval: k.StreamInterval.String(),
	})
}

// knobSetters parse one JSON value into its knob. Durations accept a Go
// duration string or a number of seconds.
var knobSetters = map[string]func(k *Knobs, raw json.RawMessage) error{
	"latency":         func(k *Knobs, raw json.RawMessage) error { return decodeDuration(raw, &k.Latency) },
	"stream_interval": func(k *Knobs, raw json.RawMessage) error { return decodeDuration(raw, &k.StreamInterval) },
	"error_rate":      func(k *Knobs, raw json.RawMessage) error { return decodeStrict(raw, &k.ErrorRate, "a number") },
	"capacity":        func(k *Knobs, raw json.RawMessage) error { return decodeStrict(raw, &k.Capacity, "a number") },
	"hang_rate":       func(k *Knobs, raw json.RawMessage) error { return decodeStrict(raw, &k.HangRate, "a number") },
	"reset_rate":      func(k *Knobs, raw json.RawMessage) error { return decodeStrict(raw, &k.ResetRate, "a number") },
	"retry_after":     func(k *Knobs, raw json.RawMessage) error { return decodeStrict(raw, &k.RetryAfter, "an integer") },
	"stream_chunks":   func(k *Knobs, raw json.RawMessage) error { return decodeStrict(raw, &k.StreamChunks, "an integer") },
}

// KnobNames lists the JSON names of the knobs, sorted.
func KnobNames() []string {
	names := make([]string, 0, len(knobSetters))
	for n := range knobSetters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UnmarshalJSON applies a JSON object onto k: keys present change, keys
// absent keep their value, so decoding onto the current knobs is a partial
// update. Unknown keys, wrong types and out-of-range values are *KnobError
// values (joined); on error k is unchanged. null is a no-op, as json expects.
func (k *Knobs) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return &KnobError{Key: "", Reason: "must be a JSON object of knobs: " + err.Error()}
	}
	keys := make([]string, 0, len(fields))
	for key := range fields {
		keys = append(keys, key)
	}
	sort.Strings(keys) // report problems in a stable order
	next := *k
	var errs []error
	for _, key := range keys {
		set, ok := knobSetters[key]
		if !ok {
			errs = append(errs, &KnobError{Key: key, Reason: "unknown knob (known: " + strings.Join(KnobNames(), ", ") + ")"})
			continue
		}
		if err := set(&next, fields[key]); err != nil {
			errs = append(errs, &KnobError{Key: key, Reason: err.Error()})
		}
	}
	if len(errs) == 0 {
		if err := next.Validate(); err != nil {
			return err
		}
		*k = next
		return nil
	}
	return errors.Join(errs...)
}

// decodeStrict decodes one JSON value described as what, refusing null
// (which json would silently skip) and fractions for integers.
func decodeStrict(raw json.RawMessage, v any, what string) error {
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) || json.Unmarshal(raw, v) != nil {
		return fmt.Errorf("must be %s, got %s", what, raw)
	}
	return nil
}

// decodeDuration reads a Go duration string ("300ms") or a number of seconds.
func decodeDuration(raw json.RawMessage, d *time.Duration) error {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("must be a duration such as \"300ms\", got %q", s)
		}
		*d = v
		return nil
	}
	var secs float64
	if decodeStrict(raw, &secs, "") != nil {
		return fmt.Errorf("must be a duration such as \"300ms\" or a number of seconds, got %s", bytes.TrimSpace(raw))
	}
	if math.IsNaN(secs) || math.Abs(secs) > math.MaxInt64/float64(time.Second) {
		return fmt.Errorf("duration %v seconds is out of range", secs)
	}
	*d = time.Duration(secs * float64(time.Second))
	return nil
}
