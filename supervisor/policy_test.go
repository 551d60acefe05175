package supervisor

import (
	"strings"
	"testing"
	"time"
)

func testPolicy() Policy {
	return Policy{
		MinBackoff:      100 * time.Millisecond,
		MaxBackoff:      time.Second,
		Multiplier:      2,
		MaxRestarts:     10,
		Window:          time.Minute,
		ResetAfter:      time.Hour,
		MaxRedeliveries: 3,
	}
}

func TestDefaultPolicyIsValid(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Policy)
		want string // substring of the error; "" for valid
	}{
		{"valid", func(*Policy) {}, ""},
		{"negative min", func(p *Policy) { p.MinBackoff = -1 }, "min_backoff"},
		{"max below min", func(p *Policy) { p.MaxBackoff = 10 * time.Millisecond }, "max_backoff (10ms) must be >= min_backoff (100ms)"},
		{"shrinking", func(p *Policy) { p.Multiplier = 0.5 }, "multiplier"},
		{"NaN multiplier", func(p *Policy) { p.Multiplier = nan() }, "multiplier"},
		{"jitter above 1", func(p *Policy) { p.Jitter = 1.5 }, "jitter"},
		{"negative restarts", func(p *Policy) { p.MaxRestarts = -1 }, "max_restarts"},
		{"no window", func(p *Policy) { p.Window = 0 }, "window"},
		{"negative reset", func(p *Policy) { p.ResetAfter = -time.Second }, "reset_after"},
		{"no deliveries", func(p *Policy) { p.MaxRedeliveries = 0 }, "max_redeliveries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			tc.edit(&p)
			err := p.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestPolicyBackoff(t *testing.T) {
	p := testPolicy()
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, 100 * time.Millisecond}, // treated as the first
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second}, // 1.6s capped
		{64, time.Second},
		{100000, time.Second}, // no overflow
	} {
		if got := p.Backoff(tc.attempt); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}

func TestPolicyJittered(t *testing.T) {
	p := testPolicy()
	p.Jitter = 0.2
	for _, tc := range []struct {
		d    time.Duration
		u    float64
		want time.Duration
	}{
		{500 * time.Millisecond, 0, 400 * time.Millisecond},   // -20%
		{500 * time.Millisecond, 0.5, 500 * time.Millisecond}, // centre
		{500 * time.Millisecond, 0.75, 550 * time.Millisecond},
		{time.Second, 0.99, time.Second}, // never above MaxBackoff
		{time.Second, 0, 800 * time.Millisecond},
		{0, 0.3, 0},
	} {
		if got := p.Jittered(tc.d, tc.u); got != tc.want {
			t.Errorf("Jittered(%v, %v) = %v, want %v", tc.d, tc.u, got, tc.want)
		}
	}
	p.Jitter = 1 // the full range still never goes negative
	if got := p.Jittered(100*time.Millisecond, 0); got != 0 {
		t.Errorf("Jittered with jitter 1, u 0 = %v, want 0", got)
	}
}
