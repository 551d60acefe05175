package supervisor

import (
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// GiveUp describes a message that will not be redelivered.
type GiveUp struct {
	Supervisor *actor.PID // the supervising actor, where the hook may post a message
	Child      *actor.PID
	Actor      string     // the child's name
	Message    any        // the message, unwrapped from its envelope
	Sender     *actor.PID // its sender, nil for a plain Send
	Attempts   int        // how many times it crashed the actor
	Reason     any        // the last panic value
	Escalated  bool       // given up because the child's failures were escalated, not for the redelivery cap
}

// Option adjusts a Strategy.
type Option func(*Strategy)

// WithRand sets the jitter source; tests pass a seeded one. The Strategy
// serialises its use.
func WithRand(r *rand.Rand) Option { return func(s *Strategy) { s.rnd = r } }

// WithGiveUp registers f to be told about every message given up, after
// DeliveryFailed went to its sender. f runs on the supervising actor's
// goroutine, between its messages, and must not block.
func WithGiveUp(f func(GiveUp)) Option { return func(s *Strategy) { s.onGiveUp = f } }

// WithDeliveryMemory bounds the per-message crash counts (defaults:
// DefaultDeliveryLimit entries, DefaultDeliveryTTL).
func WithDeliveryMemory(limit int, ttl time.Duration) Option {
	return func(s *Strategy) { s.delivLimit, s.delivTTL = limit, ttl }
}
