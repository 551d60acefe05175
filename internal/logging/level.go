package logging

import (
	"io"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// LevelSwitch is a zerolog.LevelWriter that drops events below a level that
// can be changed while running (debug_mode applies live). Safe for
// concurrent use: the level is an atomic.
type LevelSwitch struct {
	out   io.Writer
	level atomic.Int32
}

// NewLevelSwitch writes to out, starting at level.
func NewLevelSwitch(out io.Writer, level zerolog.Level) *LevelSwitch {
	s := &LevelSwitch{out: out}
	s.level.Store(int32(level))
	return s
}

// SetLevel changes the minimum level written.
func (s *LevelSwitch) SetLevel(l zerolog.Level) { s.level.Store(int32(l)) }

// Level returns the minimum level written.
func (s *LevelSwitch) Level() zerolog.Level { return zerolog.Level(s.level.Load()) }

// Write writes p unconditionally (zerolog calls WriteLevel).
func (s *LevelSwitch) Write(p []byte) (int, error) { return s.out.Write(p) }

// WriteLevel writes p when l is at or above the current level.
func (s *LevelSwitch) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < s.Level() {
		return len(p), nil
	}
	return s.out.Write(p)
}
