package logging

import (
	"context"
	"log/slog"
	"strings"

	"github.com/rs/zerolog"
)

// SlogHandler is a slog.Handler that writes into a zerolog.Logger, so the
// actor library's logs land in the same JSON stream as ours.
type SlogHandler struct {
	log    zerolog.Logger
	min    func() slog.Level
	attrs  []slog.Attr
	groups []string
}

var _ slog.Handler = (*SlogHandler)(nil)

// NewSlogHandler wraps log. min gives the lowest level passed on; it is a
// function so the threshold can follow debug_mode while running. The actor
// library logs routine events (dead letters, recoveries we log ourselves) at
// info, so deer passes only its warnings and errors unless debugging.
func NewSlogHandler(log zerolog.Logger, min func() slog.Level) *SlogHandler {
	return &SlogHandler{log: log, min: min}
}

// Enabled reports whether records at l are passed on.
func (h *SlogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.min()
}

// Handle writes one record.
func (h *SlogHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.log.WithLevel(zerologLevel(r.Level))
	if ev == nil {
		return nil
	}
	prefix := strings.Join(h.groups, ".")
	for _, a := range h.attrs {
		addAttr(ev, prefix, a)
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(ev, prefix, a)
		return true
	})
	ev.Msg(r.Message)
	return nil
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *SlogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	return &c
}

// WithGroup returns a handler that prefixes keys with name.
func (h *SlogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(append([]string{}, h.groups...), name)
	return &c
}

func addAttr(ev *zerolog.Event, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	key := a.Key
	if prefix != "" {
		key = prefix + "." + key
	}
	switch a.Value.Kind() {
	case slog.KindGroup:
		for _, g := range a.Value.Group() {
			addAttr(ev, key, g)
		}
	case slog.KindString:
		ev.Str(key, a.Value.String())
	case slog.KindInt64:
		ev.Int64(key, a.Value.Int64())
	case slog.KindUint64:
		ev.Uint64(key, a.Value.Uint64())
	case slog.KindFloat64:
		ev.Float64(key, a.Value.Float64())
	case slog.KindBool:
		ev.Bool(key, a.Value.Bool())
	case slog.KindDuration:
		ev.Dur(key, a.Value.Duration())
	case slog.KindTime:
		ev.Time(key, a.Value.Time())
	default:
		ev.Interface(key, a.Value.Any())
	}
}

func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.InfoLevel
	default:
		return zerolog.DebugLevel
	}
}
