package pool

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
)

func TestTransportSettings(t *testing.T) {
	cp := conf.ConnectionPool{MaxConnections: 7, ConnectionTimeout: 2.5, IdleTimeout: 90, MaxRetries: 2}
	tr := newTransport(cp, false, nil)
	if tr.MaxConnsPerHost != 7 || tr.MaxIdleConnsPerHost != 7 || tr.IdleConnTimeout != 90*time.Second ||
		tr.TLSHandshakeTimeout != 2500*time.Millisecond || tr.ForceAttemptHTTP2 || tr.DialContext == nil {
		t.Fatalf("transport %+v", tr)
	}
	if !newTransport(cp, true, nil).ForceAttemptHTTP2 {
		t.Fatal("https upstream without ForceAttemptHTTP2")
	}
	if !isHTTPS([]string{"http://a", "https://b"}) || isHTTPS([]string{"http://a"}) {
		t.Fatal("isHTTPS")
	}
}

func TestRetryingDial(t *testing.T) {
	refused := errors.New("refused")
	cases := []struct {
		name                   string
		retries, failFirst     int
		wantErr                bool
		wantRetries, wantFails uint64
	}{
		{"first try", 3, 0, false, 0, 0},
		{"succeeds on the last retry", 3, 3, false, 3, 0},
		{"fails after every retry", 2, 10, true, 2, 1},
		{"no retries", 0, 1, true, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			dial := func(context.Context, string, string) (net.Conn, error) {
				calls++
				if calls <= tc.failFirst {
					return nil, refused
				}
				c, _ := net.Pipe()
				return c, nil
			}
			var counters dialCounters
			conn, err := retryingDial(dial, tc.retries, &counters)(context.Background(), "tcp", "x:1")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if conn != nil {
				conn.Close()
			}
			if r, f := counters.retries.Load(), counters.failures.Load(); r != tc.wantRetries || f != tc.wantFails {
				t.Fatalf("retries %d failures %d, want %d %d", r, f, tc.wantRetries, tc.wantFails)
			}
		})
	}
	t.Run("no such host fails at once", func(t *testing.T) {
		calls := 0
		dial := func(context.Context, string, string) (net.Conn, error) {
			calls++
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.example.invalid", IsNotFound: true}}
		}
		var counters dialCounters
		_, err := retryingDial(dial, 5, &counters)(context.Background(), "tcp", "api.example.invalid:443")
		if err == nil || calls != 1 || counters.retries.Load() != 0 || counters.failures.Load() != 1 {
			t.Fatalf("err %v after %d calls, %d retries, %d failures; want one call", err, calls, counters.retries.Load(), counters.failures.Load())
		}
	})
	t.Run("a cancelled context stops retrying", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		dial := func(context.Context, string, string) (net.Conn, error) {
			calls++
			cancel()
			return nil, refused
		}
		if _, err := retryingDial(dial, 5, nil)(ctx, "tcp", "x:1"); err == nil || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
}
