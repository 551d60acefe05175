package pool

import (
	"context"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deer-runtime/deer/actors/retry"
	"github.com/deer-runtime/deer/conf"
)

// dialCounters count what the retrying dialer did. They are written on the
// transport's dialing goroutines and read by the actor, hence atomics.
type dialCounters struct {
	retries  atomic.Uint64 // dial attempts after a failed one
	failures atomic.Uint64 // dials that failed after every retry
}

// newTransport builds the transport for one upstream from connection_pool.
// https selects ForceAttemptHTTP2 (one TLS connection then carries many
// calls). counters may be nil.
func newTransport(cp conf.ConnectionPool, https bool, counters *dialCounters) *http.Transport {
	timeout := conf.Seconds(cp.ConnectionTimeout)
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           retryingDial(d.DialContext, cp.MaxRetries, counters),
		MaxConnsPerHost:       cp.MaxConnections,
		MaxIdleConnsPerHost:   cp.MaxConnections,
		IdleConnTimeout:       conf.Seconds(cp.IdleTimeout),
		TLSHandshakeTimeout:   timeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     https,
	}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// retryingDial retries a failed dial up to retries times with a short,
// growing pause, so that a dropped SYN or a listener restarting does not fail
// the call; only the last error counts as a failed attempt. A host that
// does not exist (DNS "no such host") fails at once: asking again gets the
// same answer.
func retryingDial(dial dialFunc, retries int, counters *dialCounters) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		for attempt := 0; ; attempt++ {
			conn, err := dial(ctx, network, addr)
			if err == nil {
				return conn, nil
			}
			if attempt >= retries || ctx.Err() != nil || retry.HostNotFound(err) {
				if counters != nil {
					counters.failures.Add(1)
				}
				return nil, err
			}
			if counters != nil {
				counters.retries.Add(1)
			}
			pause := time.NewTimer(retryPause(attempt))
			select {
			case <-pause.C:
			case <-ctx.Done():
				pause.Stop()
				if counters != nil {
					counters.failures.Add(1)
				}
				return nil, err
			}
		}
	}
}

// retryPause is 25ms, 50ms, 100ms, … capped at 1s.
func retryPause(attempt int) time.Duration {
	d := 25 * time.Millisecond << min(attempt, 6)
	return min(d, time.Second)
}

func isHTTPS(urls []string) bool {
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil && u.Scheme == "https" {
			return true
		}
	}
	return false
}

// warm opens n connections to base through t and leaves them idle in t, so
// that the first calls skip dial and handshake. It reports how many new
// connections were opened. Each request holds its connection (by blocking in
// GotConn) until every request has one or has failed: otherwise a fast
// server would let later requests reuse the first connection. Over HTTP/2
// one connection carries all of them, and warm reports 1.
func warm(ctx context.Context, t *http.Transport, base string, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	var (
		arrived atomic.Int64
		all     = make(chan struct{})
		opened  atomic.Int64
		wg      sync.WaitGroup
		errMu   sync.Mutex
		first   error
	)
	arrive := func() {
		if arrived.Add(1) == int64(n) {
			close(all)
		}
	}
	client := &http.Client{Transport: t}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
				if !info.Reused {
					opened.Add(1)
				}
				once.Do(arrive)
				select {
				case <-all:
				case <-ctx.Done():
				}
			}}
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodHead, base, nil)
			if err == nil {
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			once.Do(arrive)
			if err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return int(opened.Load()), first
}
