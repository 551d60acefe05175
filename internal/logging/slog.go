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
	attrs  []prefixed // from WithAttrs, each under the groups open when it was added
	groups []string
}

// prefixed is an attribute and the group path it was added under.
type prefixed struct {
	prefix string
	attr   slog.Attr
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
	for _, p := range h.attrs {
		addAttr(ev, p.prefix, p.attr)
	}
	prefix := strings.Join(h.groups, ".")
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
	prefix := strings.Join(h.groups, ".")
	c.attrs = append([]prefixed{}, h.attrs...)
	for _, a := range attrs {
		c.attrs = append(c.attrs, prefixed{prefix: prefix, attr: a})
	}
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
	if a.Equal(slog.Attr{}) {
		return // slog's rule: an empty attr is ignored
	}
	key := a.Key
	if prefix != "" {
		key = prefix + "." + key
	}
	switch a.Value.Kind() {
	case slog.KindGroup:
		if a.Key == "" {
			key = prefix // a group with no key is inlined
		}
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
