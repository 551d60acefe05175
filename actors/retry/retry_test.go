package retry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"
)

func TestClassifyAndRetryable(t *testing.T) {
	connErr := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	// As http.Client.Do returns them: a *url.Error around the dial's error.
	noSuchHost := &url.Error{Op: "Post", URL: "https://api.example.invalid/v1", Err: &net.OpError{Op: "dial",
		Err: &net.DNSError{Err: "no such host", Name: "api.example.invalid", IsNotFound: true}}}
	dnsTimeout := &url.Error{Op: "Post", URL: "https://api.example.com/v1", Err: &net.OpError{Op: "dial",
		Err: &net.DNSError{Err: "i/o timeout", Name: "api.example.com", IsTimeout: true}}}
	cases := []struct {
		status    int
		err       error
		class     Class
		retryable bool
	}{
		{200, nil, Success, false},
		{204, nil, Success, false},
		{302, nil, Success, false},
		{400, nil, ClientError, false},
		{401, nil, ClientError, false},
		{404, nil, ClientError, false},
		{429, nil, RateSignal, true},
		{500, nil, Failure, true},
		{501, nil, Failure, false},
		{502, nil, Failure, true},
		{503, nil, Failure, true},
		{504, nil, Failure, true},
		{0, connErr, Failure, true},
		{0, context.DeadlineExceeded, Failure, true},
		{0, context.Canceled, Failure, false},
		{0, noSuchHost, Failure, false}, // the breaker counts it; a retry cannot help
		{0, dnsTimeout, Failure, true},
	}
	for _, c := range cases {
		if got := Classify(c.status, c.err); got != c.class {
			t.Errorf("Classify(%d, %v) = %v, want %v", c.status, c.err, got, c.class)
		}
		if got := Retryable(c.status, c.err); got != c.retryable {
			t.Errorf("Retryable(%d, %v) = %v, want %v", c.status, c.err, got, c.retryable)
		}
	}
}

func TestNotFoundHost(t *testing.T) {
	err := fmt.Errorf("calling: %w", &net.OpError{Op: "dial", Err: &net.DNSError{Name: "a.invalid", IsNotFound: true}})
	if h, ok := NotFoundHost(err); !ok || h != "a.invalid" || !HostNotFound(err) {
		t.Errorf("NotFoundHost = %q, %v", h, ok)
	}
	for _, other := range []error{nil, errors.New("no such host"), &net.DNSError{Name: "b", IsTemporary: true}} {
		if _, ok := NotFoundHost(other); ok || HostNotFound(other) {
			t.Errorf("%v counted as no such host", other)
		}
	}
}

func TestDelayWithoutJitter(t *testing.T) {
	s := Schedule{Base: time.Second, Max: 10 * time.Second, Exp: 2}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := s.Delay(n+1, 0.5, 0); got != w {
			t.Errorf("retry %d: %v, want %v", n+1, got, w)
		}
	}
	// A huge n neither overflows nor exceeds max_delay.
	if got := s.Delay(5000, 0, 0); got != 10*time.Second {
		t.Errorf("retry 5000: %v", got)
	}
	// Exponential base 1 is a constant delay.
	if got := (Schedule{Base: 3 * time.Second, Max: time.Minute, Exp: 1}).Delay(7, 0, 0); got != 3*time.Second {
		t.Errorf("base 1: %v", got)
	}
}

func TestDelayWithFullJitter(t *testing.T) {
	s := Schedule{Base: time.Second, Max: 10 * time.Second, Exp: 2, Jitter: true}
	cases := []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{1, 0, 0},
		{1, 0.5, 500 * time.Millisecond},
		{3, 0.25, time.Second}, // 4 s · 0.25
		{3, 0.999, 3996 * time.Millisecond},
		{6, 0.5, 5 * time.Second}, // capped at 10 s, then jittered
		{2, -1, 0},                // u is clamped into [0, 1]
		{2, 7, 2 * time.Second},
	}
	for _, c := range cases {
		if got := s.Delay(c.n, c.u, 0); got != c.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", c.n, c.u, got, c.want)
		}
	}
}

func TestRetryAfterIsAFloor(t *testing.T) {
	s := Schedule{Base: time.Second, Max: 10 * time.Second, Exp: 2, Jitter: true}
	if got := s.Delay(1, 0.1, 2*time.Second); got != 2*time.Second {
		t.Errorf("jittered below Retry-After: %v, want 2s", got)
	}
	if got := s.Delay(4, 1, 2*time.Second); got != 8*time.Second {
		t.Errorf("above Retry-After: %v, want 8s", got)
	}
	// Retry-After wins over max_delay: the upstream asked for it.
	if got := s.Delay(1, 1, 30*time.Second); got != 30*time.Second {
		t.Errorf("Retry-After beyond max_delay: %v, want 30s", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 7, 28, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2", 2 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"Fri, 27 Nov 2026 07:28:05 GMT", 5 * time.Second, true},
		{"Friday, 27-Nov-26 07:29:00 GMT", time.Minute, true}, // RFC 850
		{"Fri Nov 27 07:28:03 2026", 3 * time.Second, true},   // asctime
		{"Fri, 27 Nov 2026 07:00:00 GMT", 0, true},            // in the past
		{"99999999999", 24 * time.Hour, true},                 // capped
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, c := range cases {
		got, ok := ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
