// Package logging builds deer's zerolog logger and routes protoactor's slog
// output into it.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// New returns the process logger and the switch that sets its level live:
// JSON to w, or a console writer in debug mode (the format is chosen at start;
// the level follows debug_mode while running).
func New(w io.Writer, debug bool) (zerolog.Logger, *LevelSwitch) {
	if w == nil {
		w = os.Stderr
	}
	if debug {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339Nano}
	}
	sw := NewLevelSwitch(w, LevelFor(debug))
	return zerolog.New(sw).Level(zerolog.DebugLevel).With().Timestamp().Logger(), sw
}

// LevelFor is the log level of a debug_mode setting.
func LevelFor(debug bool) zerolog.Level {
	if debug {
		return zerolog.DebugLevel
	}
	return zerolog.InfoLevel
}
