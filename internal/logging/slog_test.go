package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/rs/zerolog"
)

// handler returns a SlogHandler writing JSON into buf, passing records at
// or above lv.Level().
func handler(buf *bytes.Buffer, lv *slog.LevelVar) *SlogHandler {
	return NewSlogHandler(zerolog.New(buf), lv.Level)
}

func everything() *slog.LevelVar {
	lv := &slog.LevelVar{}
	lv.Set(slog.Level(-100))
	return lv
}

// one decodes the single record in buf.
func one(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	recs := records(t, buf.String())
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1: %s", len(recs), buf.String())
	}
	return recs[0]
}

func TestSlogHandlerMapsLevels(t *testing.T) {
	for _, tc := range []struct {
		in   slog.Level
		want string
	}{
		{slog.LevelDebug - 4, "debug"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo - 1, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelInfo + 2, "info"},
		{slog.LevelWarn, "warn"},
		{slog.LevelWarn + 2, "warn"},
		{slog.LevelError, "error"},
		{slog.LevelError + 4, "error"},
	} {
		var buf bytes.Buffer
		slog.New(handler(&buf, everything())).Log(context.Background(), tc.in, "hello")
		r := one(t, &buf)
		if r["level"] != tc.want || r["message"] != "hello" {
			t.Errorf("slog level %v: record %v, want level %q", tc.in, r, tc.want)
		}
	}
}

// point is a LogValuer: the handler must log what it resolves to.
type point struct{ x, y int }

func (p point) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("x", p.x), slog.Int("y", p.y))
}

func TestSlogHandlerWritesAttrs(t *testing.T) {
	var buf bytes.Buffer
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	slog.New(handler(&buf, everything())).Info("attrs",
		"s", "text",
		"i", -3,
		"u", uint64(7),
		"f", 1.5,
		"b", true,
		"d", 1500*time.Millisecond,
		"t", when,
		"any", map[string]int{"n": 1},
		"p", point{1, 2},
		slog.Group("g", "a", 1, slog.Group("h", "b", "two")),
	)
	r := one(t, &buf)
	want := map[string]any{
		"s": "text", "i": -3.0, "u": 7.0, "f": 1.5, "b": true,
		"d":   1500.0, // zerolog's default duration unit: milliseconds
		"t":   when.Format(time.RFC3339),
		"p.x": 1.0, "p.y": 2.0,
		"g.a": 1.0, "g.h.b": "two",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v (record %v)", k, r[k], v, r)
		}
	}
	if m, ok := r["any"].(map[string]any); !ok || m["n"] != 1.0 {
		t.Errorf("any = %#v, want the object {n: 1}", r["any"])
	}
}

func TestSlogHandlerWithAttrsAndWithGroup(t *testing.T) {
	var buf bytes.Buffer
	base := handler(&buf, everything())
	slog.New(base).With("component", "protoactor", "n", 1).Info("plain", "x", 1)
	grouped := slog.New(base).WithGroup("actor").With("pid", "deer/router")
	grouped.Info("grouped", "x", 2)
	slog.New(base).WithGroup("actor").WithGroup("inner").With("pid", "deer/router").Info("nested", "y", 3)
	// WithGroup("") is the same handler.
	if base.WithGroup("") != slog.Handler(base) {
		t.Error("WithGroup(\"\") returned a different handler")
	}

	recs := records(t, buf.String())
	if len(recs) != 3 {
		t.Fatalf("got %d records: %s", len(recs), buf.String())
	}
	checks := []map[string]any{
		{"component": "protoactor", "n": 1.0, "x": 1.0},
		{"actor.pid": "deer/router", "actor.x": 2.0},
		{"actor.inner.pid": "deer/router", "actor.inner.y": 3.0},
	}
	for i, want := range checks {
		for k, v := range want {
			if recs[i][k] != v {
				t.Errorf("record %d: %s = %#v, want %#v (%v)", i, k, recs[i][k], v, recs[i])
			}
		}
		if len(recs[i]) != len(want)+2 { // plus level and message
			t.Errorf("record %d has other fields than %v: %v", i, want, recs[i])
		}
	}
}

// TestSlogHandlerDerivedHandlersDoNotShareAttrs guards against append
// aliasing: two handlers derived from one must not see each other's attrs.
func TestSlogHandlerDerivedHandlersDoNotShareAttrs(t *testing.T) {
	var buf bytes.Buffer
	parent := handler(&buf, everything()).WithAttrs([]slog.Attr{slog.Int("a", 1), slog.Int("b", 2), slog.Int("c", 3)})
	left := parent.WithAttrs([]slog.Attr{slog.String("side", "left")})
	right := parent.WithAttrs([]slog.Attr{slog.String("side", "right")})
	slog.New(left).Info("l")
	slog.New(right).Info("r")
	recs := records(t, buf.String())
	if len(recs) != 2 || recs[0]["side"] != "left" || recs[1]["side"] != "right" {
		t.Errorf("derived handlers mixed their attrs: %s", buf.String())
	}
}

func TestSlogHandlerEnabledFollowsMin(t *testing.T) {
	var buf bytes.Buffer
	lv := &slog.LevelVar{}
	lv.Set(slog.LevelWarn)
	h := handler(&buf, lv)
	log := slog.New(h)
	ctx := context.Background()

	if h.Enabled(ctx, slog.LevelInfo) || !h.Enabled(ctx, slog.LevelWarn) || !h.Enabled(ctx, slog.LevelError) {
		t.Errorf("at warn: Enabled(info, warn, error) = %v, %v, %v", h.Enabled(ctx, slog.LevelInfo), h.Enabled(ctx, slog.LevelWarn), h.Enabled(ctx, slog.LevelError))
	}
	log.Info("dropped")
	log.Warn("kept")
	lv.Set(slog.LevelDebug) // debug_mode switched on: the threshold moves live
	if !h.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled(debug) is false after the threshold moved to debug")
	}
	log.Debug("now kept")
	// Derived handlers follow the same threshold.
	lv.Set(slog.LevelError)
	log.With("k", "v").WithGroup("g").Warn("dropped too")
	log.With("k", "v").Error("kept too")

	got := messages(t, buf.String())
	want := []string{"warn:kept", "debug:now kept", "error:kept too"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("logged %v, want %v", got, want)
	}
}

// TestSlogHandlerHonoursTheZerologLevel checks that a record slog lets
// through is still subject to the zerolog logger's own level.
func TestSlogHandlerHonoursTheZerologLevel(t *testing.T) {
	var buf bytes.Buffer
	h := NewSlogHandler(zerolog.New(&buf).Level(zerolog.WarnLevel), everything().Level)
	log := slog.New(h)
	log.Info("dropped by zerolog")
	log.Error("kept")
	if got := messages(t, buf.String()); len(got) != 1 || got[0] != "error:kept" {
		t.Errorf("logged %v, want [error:kept]", got)
	}
}

// TestSlogHandlerAttrsBeforeAGroupStayOutsideIt is slog's rule: attrs added
// with WithAttrs before WithGroup are not qualified by that group.
func TestSlogHandlerAttrsBeforeAGroupStayOutsideIt(t *testing.T) {

	var buf bytes.Buffer
	log := slog.New(handler(&buf, everything())).With("a", 1).WithGroup("g")
	log.Info("m", "b", 2)
	log.With("c", 3).WithGroup("h").Info("m", "d", 4)
	recs := records(t, buf.String())
	if len(recs) != 2 {
		t.Fatalf("got %d records: %s", len(recs), buf.String())
	}
	if r := recs[0]; r["a"] != 1.0 || r["g.b"] != 2.0 {
		t.Errorf("record %v, want a=1 and g.b=2", r)
	}
	if r := recs[1]; r["a"] != 1.0 || r["g.c"] != 3.0 || r["g.h.d"] != 4.0 {
		t.Errorf("record %v, want a=1, g.c=3 and g.h.d=4", r)
	}
}

// TestSlogHandlerIgnoresEmptyAttrs is slog's rule: a zero Attr is not
// written (it would come out as the key "").
func TestSlogHandlerIgnoresEmptyAttrs(t *testing.T) {

	var buf bytes.Buffer
	slog.New(handler(&buf, everything())).Info("m", slog.Attr{}, "k", "v")
	r := one(t, &buf)
	if _, ok := r[""]; ok || r["k"] != "v" {
		t.Errorf("record %v, want k=v and no empty key", r)
	}
}

// TestSlogHandlerConformance runs the standard library's handler checks.
// Records are stamped by zerolog's own timestamp, not Record.Time, so the
// zero-time rule does not apply and the harness is told so.
func TestSlogHandlerConformance(t *testing.T) {

	var buf bytes.Buffer
	h := NewSlogHandler(zerolog.New(&buf).With().Timestamp().Logger(), everything().Level)
	results := func() []map[string]any {
		var out []map[string]any
		for _, r := range records(t, buf.String()) {
			out = append(out, nest(r))
		}
		return out
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		var kept []string
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.Contains(line, "zero Record.Time") {
				kept = append(kept, line)
			}
		}
		if len(kept) > 0 {
			t.Error(strings.Join(kept, "\n"))
		}
	}
}

// nest turns a flat zerolog record with dotted keys into the nested map
// slogtest expects, with slog's key names.
func nest(r map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range r {
		if k == zerolog.MessageFieldName {
			k = slog.MessageKey
		}
		parts := strings.Split(k, ".")
		cur := out
		for _, p := range parts[:len(parts)-1] {
			sub, ok := cur[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				cur[p] = sub
			}
			cur = sub
		}
		cur[parts[len(parts)-1]] = v
	}
	return out
}
