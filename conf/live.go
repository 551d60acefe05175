package conf

import (
	"sync/atomic"
	"time"
)

// Live holds the configuration in force. Readers on any goroutine call Load
// and must treat the result as immutable; writers replace it whole with
// Store, so a reader never sees a half-applied update.
type Live struct {
	current atomic.Pointer[Config]
}

// NewLive returns a Live holding cfg.
func NewLive(cfg *Config) *Live {
	l := &Live{}
	l.current.Store(cfg)
	return l
}

// Load returns the configuration in force. Do not modify it.
func (l *Live) Load() *Config { return l.current.Load() }

// Store replaces the configuration in force.
func (l *Live) Store(cfg *Config) { l.current.Store(cfg) }

// Seconds converts a config duration (float seconds) to a time.Duration.
func Seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}
