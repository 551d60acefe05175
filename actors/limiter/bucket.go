package limiter

import (
	"math"
	"time"

	"github.com/deer-runtime/deer/conf"
)

// Settings are the rate_limit keys a Bucket runs on.
type Settings struct {
	InitialRate      float64       // tokens/s at start and after initial_rate changes
	MinRate, MaxRate float64       // tokens/s bounds of every rate and ceiling
	AdaptationFactor float64       // > 1: a throttle cuts by at least it (at most its square); growth per step
	Window           time.Duration // a throttle's ceiling is remembered this long (and the retry budget's window)
	Burst            int           // bucket depth
}

// SettingsFrom reads a rate_limit section (for an upstream: the effective
// one, conf.Config.RateLimitFor).
func SettingsFrom(r conf.RateLimit) Settings {
	return Settings{
		InitialRate: r.InitialRate, MinRate: r.MinRate, MaxRate: r.MaxRate,
		AdaptationFactor: r.AdaptationFactor, Window: conf.Seconds(r.WindowSize), Burst: r.BurstAllowance,
	}
}

// The adaptation's constants (see Bucket for the rules they take part in).
const (
	// DecreaseCooldown: throttles within this long of a cut do not cut
	// again. A burst of 429s answering calls already in flight is one
	// signal, not one per call.
	DecreaseCooldown = time.Second
	// IncreaseStep is the least quiet time (since the last change and the
	// last throttle) before a demand or probe increase.
	IncreaseStep = 250 * time.Millisecond
	// RecoverStep is the least quiet time before the rate climbs back to
	// the ceiling after a cut. Short: the 429s of calls still in flight
	// reset it, and every moment below the ceiling is lost throughput.
	RecoverStep = 10 * time.Millisecond
	// ProbeStart is the first probe step above the ceiling, as a share of
	// it (1%).
	ProbeStart = 0.01
	// ProbeFlat is how many probe steps add ProbeStart before the steps
	// start doubling (1%, 1%, 1%, 1%, 2%, 4%, …): gentle where the capacity
	// probably is, fast once past it.
	ProbeFlat = 3
	// ProbeCalls: before its first probe above the ceiling the rate holds
	// there for the time of this many calls (at least IncreaseStep), so a
	// probe cycle, which ends in one throttle, spans about this many calls:
	// about 2% of them throttled, whatever the rate.
	ProbeCalls = 50
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
	// Reason: throttled, recover, probe, demand (the adaptation rules);
	// initial_rate, bounds, set (configuration and SetRate).
	Reason string
}

// Bucket is the limiter's core: a token bucket with an adaptive rate. Time
// is passed in; it starts no goroutines and is not safe for concurrent use.
//
// Tokens: the bucket holds up to Burst tokens and earns Rate tokens a
// second, except while a Retry-After pause lasts. A pause leaves at most one
// token and earns none, so that when it ends one call goes at once and the
// rest follow at the rate, not as a burst into an upstream that asked for
// quiet.
//
// Adaptation. The bucket keeps a ceiling: its estimate of the upstream's
// capacity, learned from throttles (0: none). "Demand" means a caller was
// refused a token (Allow said no). Every rate below is clamped to
// [MinRate, MaxRate]; f is AdaptationFactor (no adaptation when f <= 1).
//
// Down, on a throttle (429, 503, overload), at most once per
// DecreaseCooldown:
//
//	est     = accepted calls/s over the last second, when there was demand
//	          within it and it holds at least 10 accepted calls; else none
//	ceiling = min(est, ceiling*(1+ProbeStart))  throttled while probing above the ceiling
//	          rate/f                            no estimate
//	          min(rate, est)                    no ceiling yet
//	          min(est, rate/(1+ProbeStart))     throttled at or under the ceiling
//	ceiling = max(ceiling, rate/f²)
//	rate    = min(rate/f, ceiling)
//
// So one signal cuts the rate by at least f and at most f², landing on what
// the upstream was seen to accept when that is lower (after a capacity drop
// the upstream is saturated, so the next cut lands near the new capacity).
// The ceiling creeps up by at most ProbeStart per probe cycle and comes down
// by at least ProbeStart when the rate is throttled at it (or when 429s
// keep coming after a cut, below).
//
// Up, on an accepted call, when there was demand within the last
// IncreaseStep and the rate is below MaxRate; "quiet" is the time since the
// later of the last rate change and the last throttle. A ceiling is
// forgotten first when its last throttle is Window old.
//
//	recover: below the ceiling, quiet >= RecoverStep:  rate = min(rate*f, ceiling);
//	         first, each throttle that came after the cut (the cut did not
//	         stop them at once) lowers the ceiling by a factor 1+ProbeStart,
//	         not below the rate
//	demand:  no ceiling, quiet >= IncreaseStep:        rate = rate*f
//	probe k: at or above the ceiling, quiet >= IncreaseStep, and for the
//	         first probe quiet >= ProbeCalls/ceiling too:
//	         rate += ceiling*ProbeStart*2^max(0, k-ProbeFlat)
//	         reaching ceiling*f unthrottled forgets the ceiling (the
//	         capacity rose): growth is multiplicative again.
//
// The rate thus climbs by f per IncreaseStep to the first throttle, then
// settles on the capacity in probe cycles: hold at the ceiling for about
// ProbeCalls calls, probe up by 1% steps then doubling ones, take the
// throttle that ends the probe, dip a factor below the ceiling until the
// 429s stop, climb back. After a capacity drop the next cut (one cooldown
// on) lands near the new capacity; after a rise a probe clears the old
// ceiling within about two seconds and the rate climbs by f per step.
// sim_test.go measures this against an upstream of hidden capacity.
type Bucket struct {
	s           Settings
	rate        float64
	tokens      float64
	last        time.Time // tokens were last refilled at
	pausedUntil time.Time

	lastChange, lastDecrease, lastThrottle, lastDemand time.Time

	ceiling  float64 // capacity estimate learned from throttles; 0: none
	probes   int     // probe steps above the ceiling since it was set
	sinceCut int     // throttles after the last cut, before the recovery
	accepted window1s

	throttles, increases, decreases uint64
}

// NewBucket returns a full bucket running at the clamped initial rate.
func NewBucket(now time.Time, s Settings) *Bucket {
	b := &Bucket{s: s, last: now, lastChange: now}
	b.accepted.since = now
	b.rate = b.clamp(s.InitialRate)
	b.tokens = float64(b.depth())
	return b
}

func (b *Bucket) depth() int { return max(1, b.s.Burst) }

func (b *Bucket) clamp(r float64) float64 {
	return math.Max(b.s.MinRate, math.Min(b.s.MaxRate, r))
}

func (b *Bucket) refill(now time.Time) {
	if !now.After(b.last) {
		return
	}
	from := b.last
	if b.pausedUntil.After(from) {
		from = b.pausedUntil // a pause earns nothing
	}
	if now.After(from) {
		b.tokens = math.Min(float64(b.depth()), b.tokens+b.rate*float64(now.Sub(from))/1e9) // Seconds() divides twice
	}
	b.last = now
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
	at := now
	if now.Before(b.pausedUntil) {
		at = b.pausedUntil // the pause earns nothing
	}
	if need := float64(n) - b.tokens; need > epsilon {
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

// Ceiling returns the capacity estimate learned from throttles (0: none
// known, or forgotten).
func (b *Bucket) Ceiling() float64 { return b.ceiling }

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
	b.Pause(now, o.RetryAfter)
	switch {
	case o.Throttled():
		b.throttles++
		b.lastThrottle = now
		b.sinceCut++
		return b.decrease(now)
	case o.Accepted():
		b.accepted.add(now)
		return b.increase(now)
	}
	return Change{}, false
}

// Pause stops grants for d (a Retry-After), at most MaxPause; a shorter
// pause than one in force changes nothing.
func (b *Bucket) Pause(now time.Time, d time.Duration) {
	if d <= 0 {
		return
	}
	if until := now.Add(min(d, MaxPause)); until.After(b.pausedUntil) {
		b.refill(now)
		b.pausedUntil = until
		b.tokens = math.Min(b.tokens, 1)
	}
}

// NoteDemand records that callers wanted more than the rate gave them, as a
// refused Allow does: in a cluster the refusals happen on other nodes.
func (b *Bucket) NoteDemand(now time.Time) { b.lastDemand = now }

func (b *Bucket) decrease(now time.Time) (Change, bool) {
	f := b.s.AdaptationFactor
	if f <= 1 || (!b.lastDecrease.IsZero() && now.Sub(b.lastDecrease) < DecreaseCooldown) {
		return Change{}, false
	}
	b.lastDecrease = now
	level := b.rate
	est := math.Inf(1) // none: the callers, not the upstream, set the pace
	if !b.lastDemand.IsZero() && now.Sub(b.lastDemand) <= time.Second {
		est = b.accepted.rate(now)
	}
	var c float64
	switch {
	case b.ceiling > 0 && level > b.ceiling: // a probe: the ceiling held
		c = math.Min(est, b.ceiling*(1+ProbeStart))
	case math.IsInf(est, 1):
		c = level / f
	case b.ceiling <= 0:
		c = math.Min(level, est)
	default: // throttled at or under the ceiling: it was too high
		c = math.Min(est, level/(1+ProbeStart))
	}
	c = math.Max(c, level/(f*f))
	b.ceiling, b.probes, b.sinceCut = b.clamp(c), 0, 0
	return b.setRate(now, b.clamp(math.Min(level/f, c)), "throttled")
}

func (b *Bucket) increase(now time.Time) (Change, bool) {
	f := b.s.AdaptationFactor
	if f <= 1 || b.rate >= b.s.MaxRate ||
		b.lastDemand.IsZero() || now.Sub(b.lastDemand) > IncreaseStep {
		return Change{}, false
	}
	quiet := now.Sub(b.lastChange)
	if !b.lastThrottle.IsZero() {
		quiet = min(quiet, now.Sub(b.lastThrottle))
	}
	if b.ceiling > 0 && now.Sub(b.lastThrottle) >= b.s.Window {
		b.ceiling = 0 // a throttle is remembered for one window
	}
	switch {
	case quiet < RecoverStep:
		return Change{}, false
	case b.ceiling > 0 && b.rate < b.ceiling:
		if b.sinceCut > 0 { // the cut did not stop the 429s at once: the ceiling is too high
			b.ceiling = b.clamp(math.Max(b.rate, b.ceiling/math.Pow(1+ProbeStart, float64(min(b.sinceCut, 20)))))
		}
		b.sinceCut = 0
		return b.setRate(now, b.clamp(math.Min(b.rate*f, b.ceiling)), "recover")
	case quiet < IncreaseStep:
		return Change{}, false
	case b.ceiling <= 0:
		return b.setRate(now, b.clamp(b.rate*f), "demand")
	case b.probes == 0 && quiet.Seconds()*b.ceiling < ProbeCalls:
		return Change{}, false // hold at the ceiling before probing above it
	}
	r := b.rate + b.ceiling*ProbeStart*math.Exp2(float64(max(0, b.probes-ProbeFlat)))
	b.probes++
	if r >= b.ceiling*f {
		b.ceiling = 0 // well above the old ceiling, unthrottled: the capacity rose
	}
	return b.setRate(now, b.clamp(r), "probe")
}

// Configure applies new settings. A changed InitialRate resets the rate to
// it and forgets the ceiling; otherwise the rate is re-clamped to the new
// bounds. A shallower bucket drops the tokens above its depth.
func (b *Bucket) Configure(now time.Time, s Settings) (Change, bool) {
	b.refill(now)
	old := b.s
	b.s = s
	b.tokens = math.Min(b.tokens, float64(b.depth()))
	if s.InitialRate != old.InitialRate {
		b.ceiling, b.probes = 0, 0
		return b.setRate(now, b.clamp(s.InitialRate), "initial_rate")
	}
	if b.ceiling > 0 {
		b.ceiling = b.clamp(b.ceiling)
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

// window1s counts events over the last second in ten 100ms slots: fixed
// size, no allocation, a copyable value.
type window1s struct {
	slot  [10]int64 // slot number (UnixNano / 100ms) each count belongs to
	count [10]uint32
	since time.Time // counting began: the rate's span never reaches before it
}

const (
	slotLen = int64(100 * time.Millisecond)
	// minSample: fewer accepted calls in the last second say nothing about
	// the capacity (one call more or less is 10% of them).
	minSample = 10
)

func (w *window1s) add(now time.Time) {
	n := now.UnixNano() / slotLen
	i := n % int64(len(w.slot))
	if w.slot[i] != n {
		w.slot[i], w.count[i] = n, 0
	}
	w.count[i]++
}

// rate returns events per second over the ten slots ending with now's: the
// time they cover runs from the oldest slot's start (or since) to now.
func (w *window1s) rate(now time.Time) float64 {
	n := now.UnixNano() / slotLen
	var sum uint32
	for i, s := range w.slot {
		if s > n-int64(len(w.slot)) && s <= n {
			sum += w.count[i]
		}
	}
	span := time.Duration(int64(len(w.slot)-1)*slotLen + now.UnixNano() - n*slotLen)
	if !w.since.IsZero() {
		span = min(span, now.Sub(w.since))
	}
	if sum < minSample || span <= 0 {
		return math.Inf(1) // too few to tell
	}
	return float64(sum) / span.Seconds()
}
