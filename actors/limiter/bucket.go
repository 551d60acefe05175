package limiter

import (
	"math"
	"time"

	"github.com/deer-runtime/deer/conf"
)

// Settings are the rate_limit keys a Bucket runs on.
type Settings struct {
	InitialRate      float64 // tokens/s at start and after initial_rate changes
	MinRate, MaxRate float64 // tokens/s bounds of adaptation
	AdaptationFactor float64 // rate is divided or multiplied by it (> 1)
	Window           time.Duration
	Burst            int // bucket depth
}

// SettingsFrom reads the rate_limit section.
func SettingsFrom(r conf.RateLimit) Settings {
	return Settings{
		InitialRate: r.InitialRate, MinRate: r.MinRate, MaxRate: r.MaxRate,
		AdaptationFactor: r.AdaptationFactor, Window: conf.Seconds(r.WindowSize), Burst: r.BurstAllowance,
	}
}

const (
	// DecreaseCooldown: throttles within this long of a decrease do not
	// decrease again. A burst of 429s answering calls already in flight is
	// one signal, not one per call.
	DecreaseCooldown = time.Second
	// MaxPause bounds how long one Retry-After may stop grants.
	MaxPause = 5 * time.Minute
	// epsilon absorbs float rounding, so a timer set for the instant a token
	// is due finds the token there.
	epsilon = 1e-9
)

// Outcome is how one upstream call went, as the limiter sees it.
type Outcome struct {
	Status     int           // HTTP status; 0 when there was no response
	Overload   bool          // another overload signal from the upstream
	RetryAfter time.Duration // pause grants this long
}

// Throttled reports a signal to slow down: 429, 503 or overload.
func (o Outcome) Throttled() bool { return o.Status == 429 || o.Status == 503 || o.Overload }

// Accepted reports that the upstream took the call at this rate (any answer
// below 500 but 429; a 4xx is the request's fault, not the rate's).
func (o Outcome) Accepted() bool { return !o.Throttled() && o.Status >= 200 && o.Status < 500 }

// Change is a rate adjustment.
type Change struct {
	From, To float64
	Reason   string // throttled, demand, initial_rate, bounds, set
}

// Bucket is the limiter's core: a token bucket with an adaptive rate. Time
// is passed in; it starts no goroutines and is not safe for concurrent use.
//
// Adaptation: a throttle divides the rate by AdaptationFactor (at most once
// per DecreaseCooldown, never below MinRate). The rate is multiplied by
// AdaptationFactor (never above MaxRate) when a call is accepted and
//   - at least IncreaseStep has passed since the last change,
//   - no throttle came within the last Window (a throttle is remembered that
//     long: the rate that drew it is not tried again sooner), and
//   - demand exceeded the rate within the last IncreaseStep (Allow said no).
//
// Between throttles the rate climbs toward the provider's capacity; at it,
// it oscillates within one factor below it, probing once per Window.
type Bucket struct {
	s           Settings
	rate        float64
	tokens      float64
	last        time.Time // tokens were last refilled at
	pausedUntil time.Time

	lastChange, lastDecrease, lastThrottle, lastDemand time.Time

	throttles, increases, decreases uint64
}

// NewBucket returns a full bucket running at the clamped initial rate.
func NewBucket(now time.Time, s Settings) *Bucket {
	b := &Bucket{s: s, last: now, lastChange: now}
	b.rate = b.clamp(s.InitialRate)
	b.tokens = float64(b.depth())
	return b
}

func (b *Bucket) depth() int { return max(1, b.s.Burst) }

func (b *Bucket) clamp(r float64) float64 {
	return math.Max(b.s.MinRate, math.Min(b.s.MaxRate, r))
}

// IncreaseStep is the least time between increases: a tenth of the window,
// within [1s, 10s].
func (b *Bucket) IncreaseStep() time.Duration {
	return min(10*time.Second, max(time.Second, b.s.Window/10))
}

func (b *Bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = math.Min(float64(b.depth()), b.tokens+b.rate*now.Sub(b.last).Seconds())
		b.last = now
	}
}

// Allow takes n tokens (capped at the bucket depth) if they are there and
// grants are not paused. A refusal is recorded as demand above the rate.
func (b *Bucket) Allow(now time.Time, n int) bool {
	n = min(max(n, 1), b.depth())
	b.refill(now)
	if now.Before(b.pausedUntil) || b.tokens+epsilon < float64(n) {
		b.lastDemand = now
		return false
	}
	b.tokens = math.Max(0, b.tokens-float64(n))
	return true
}

// Wait returns how long from now until Allow(n) can succeed: 0 when it can
// now. It takes nothing.
func (b *Bucket) Wait(now time.Time, n int) time.Duration {
	n = min(max(n, 1), b.depth())
	b.refill(now)
	at, tokens := now, b.tokens
	if now.Before(b.pausedUntil) {
		at = b.pausedUntil
		tokens = math.Min(float64(b.depth()), tokens+b.rate*b.pausedUntil.Sub(now).Seconds())
	}
	if need := float64(n) - tokens; need > epsilon {
		if b.rate <= 0 {
			return MaxPause // a zero rate never refills; look again later
		}
		at = at.Add(time.Duration(math.Ceil(need / b.rate * float64(time.Second))))
	}
	return at.Sub(now)
}

// Tokens returns the tokens in the bucket at now.
func (b *Bucket) Tokens(now time.Time) float64 {
	b.refill(now)
	return b.tokens
}

// Rate returns the current rate in tokens/s.
func (b *Bucket) Rate() float64 { return b.rate }

// PausedUntil returns when a Retry-After pause ends (zero: none).
func (b *Bucket) PausedUntil() time.Time { return b.pausedUntil }

// Settings returns the settings in force.
func (b *Bucket) Settings() Settings { return b.s }

// SetRate sets the rate, clamped to [MinRate, MaxRate].
func (b *Bucket) SetRate(now time.Time, r float64) (Change, bool) {
	return b.setRate(now, b.clamp(r), "set")
}

func (b *Bucket) setRate(now time.Time, r float64, reason string) (Change, bool) {
	if r == b.rate {
		return Change{}, false
	}
	b.refill(now) // tokens earned so far accrue at the old rate
	c := Change{From: b.rate, To: r, Reason: reason}
	b.rate, b.lastChange = r, now
	if r > c.From {
		b.increases++
	} else {
		b.decreases++
	}
	return c, true
}

// Observe feeds one call's outcome to the adaptation rules and applies its
// Retry-After. It reports the rate change it caused, if any.
func (b *Bucket) Observe(now time.Time, o Outcome) (Change, bool) {
	if o.RetryAfter > 0 {
		if until := now.Add(min(o.RetryAfter, MaxPause)); until.After(b.pausedUntil) {
			b.pausedUntil = until
		}
	}
	switch {
	case o.Throttled():
		b.throttles++
		b.lastThrottle = now
		if !b.lastDecrease.IsZero() && now.Sub(b.lastDecrease) < DecreaseCooldown {
			return Change{}, false
		}
		b.lastDecrease = now
		if b.s.AdaptationFactor <= 1 {
			return Change{}, false
		}
		return b.setRate(now, b.clamp(b.rate/b.s.AdaptationFactor), "throttled")
	case o.Accepted():
		if b.s.AdaptationFactor <= 1 || b.rate >= b.s.MaxRate ||
			now.Sub(b.lastChange) < b.IncreaseStep() ||
			(!b.lastThrottle.IsZero() && now.Sub(b.lastThrottle) < b.s.Window) ||
			b.lastDemand.IsZero() || now.Sub(b.lastDemand) > b.IncreaseStep() {
			return Change{}, false
		}
		return b.setRate(now, b.clamp(b.rate*b.s.AdaptationFactor), "demand")
	}
	return Change{}, false
}

// Configure applies new settings. A changed InitialRate resets the rate to
// it; otherwise the rate is re-clamped to the new bounds. A shallower
// bucket drops the tokens above its depth.
func (b *Bucket) Configure(now time.Time, s Settings) (Change, bool) {
	b.refill(now)
	old := b.s
	b.s = s
	b.tokens = math.Min(b.tokens, float64(b.depth()))
	if s.InitialRate != old.InitialRate {
		return b.setRate(now, b.clamp(s.InitialRate), "initial_rate")
	}
	return b.setRate(now, b.clamp(b.rate), "bounds")
}

// BucketStats are the counters of a Bucket.
type BucketStats struct {
	Throttles, Increases, Decreases uint64
}

// Stats returns the adaptation counters.
func (b *Bucket) Stats() BucketStats {
	return BucketStats{Throttles: b.throttles, Increases: b.increases, Decreases: b.decreases}
}
