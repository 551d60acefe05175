// Package retry is the pure core of deer's retry policy: which outcomes are
// retried, how long to wait before retry n, and how to read an upstream's
// Retry-After. No goroutines and no clock: time is an argument.
package retry

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deer-runtime/deer/conf"
)

// Class is what an attempt's outcome means for retries, the breaker and the
// limiter (SPEC §5).
type Class int

const (
	// Success: the upstream answered 2xx or 3xx.
	Success Class = iota
	// ClientError: a 4xx other than 429 is the caller's answer: never
	// retried, and not the upstream's failure.
	ClientError
	// RateSignal: 429, the upstream throttles. Retried (after its
	// Retry-After), a signal to the limiter, neutral for the breaker.
	RateSignal
	// Failure: a connection error, a timeout or a 5xx. Counted by the
	// breaker; retried when the status is 500, 502, 503 or 504 or there was
	// no answer at all.
	Failure
)

func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case ClientError:
		return "client_error"
	case RateSignal:
		return "rate_signal"
	case Failure:
		return "failure"
	}
	return "unknown"
}

// Classify an attempt: status is the upstream's HTTP status, 0 when err says
// why there was none.
func Classify(status int, err error) Class {
	switch {
	case err != nil || status == 0:
		return Failure
	case status == http.StatusTooManyRequests:
		return RateSignal
	case status >= 500:
		return Failure
	case status >= 400:
		return ClientError
	}
	return Success
}

// Retryable reports whether an attempt with this outcome may be retried:
// connection errors and timeouts (not a cancellation by the caller, nor a
// host that does not exist), 429, 500, 502, 503 and 504.
func Retryable(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !HostNotFound(err)
	}
	switch status {
	case 0, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// HostNotFound reports whether err is a DNS answer that the host does not
// exist ("no such host", NXDOMAIN): a fact about the configured base_url,
// not a passing failure, so neither a retry nor a dial retry can help. A
// DNS timeout or an unreachable resolver is not this: those may pass.
func HostNotFound(err error) bool {
	_, ok := NotFoundHost(err)
	return ok
}

// NotFoundHost is the host name a "no such host" err looked up; ok is
// false for any other error.
func NotFoundHost(err error) (name string, ok bool) {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return de.Name, true
	}
	return "", false
}

// Schedule is the backoff of error_recovery.
type Schedule struct {
	Base   time.Duration // base_delay
	Max    time.Duration // max_delay
	Exp    float64       // exponential_base
	Jitter bool          // jitter_enabled: full jitter
}

// ScheduleFrom reads the schedule from the configuration.
func ScheduleFrom(er conf.ErrorRecovery) Schedule {
	return Schedule{Base: conf.Seconds(er.BaseDelay), Max: conf.Seconds(er.MaxDelay), Exp: er.ExponentialBase, Jitter: er.JitterEnabled}
}

// Delay is how long to wait before retry n (n ≥ 1):
// min(max_delay, base_delay · exponential_base^(n-1)); with jitter a uniform
// draw in [0, that] (u in [0, 1) is the random number, passed in so tests are
// exact); never shorter than retryAfter, the upstream's own request, which
// wins over max_delay.
func (s Schedule) Delay(n int, u float64, retryAfter time.Duration) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(s.Base) * math.Pow(s.Exp, float64(n-1))
	if d > float64(s.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(s.Max)
	}
	if s.Jitter {
		d *= min(max(u, 0), 1)
	}
	return max(time.Duration(d), retryAfter)
}

// ParseRetryAfter reads a Retry-After value: delay-seconds ("2") or an
// HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", relative to now). ok is false
// when the value is absent or malformed; a date in the past is 0.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// An absurd value is capped rather than overflowing: a day is
		// longer than any task may wait anyway.
		return time.Duration(min(secs, 86400)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
