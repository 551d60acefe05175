package httpab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Transport is an http.RoundTripper over a fasthttp.Client, so that deer's
// workers (which speak net/http types) call upstreams on fasthttp. What the
// adapter costs on every call, on top of fasthttp itself: the request's
// headers and body copied into a fasthttp.Request; the answer's headers
// copied into an http.Header (a string per name and value); one goroutine
// and channel per call, because fasthttp takes no context and deer cancels
// calls through the request's context.
//
// Cancellation is weaker than net/http's: fasthttp cannot abort a call in
// flight, so a cancelled call returns at once but its connection stays busy
// until the upstream answers or the deadline passes (net/http closes it). A
// streamed answer's Close does close its connection when unread bytes
// remain.
type Transport struct {
	c *fasthttp.Client
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport with at most maxConns connections per
// upstream host.
func NewTransport(maxConns int) *Transport {
	return &Transport{c: &fasthttp.Client{
		MaxConnsPerHost:               maxConns,
		MaxIdleConnDuration:           90 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: false,
		DisablePathNormalizing:        true,
		MaxConnWaitTimeout:            30 * time.Second,
	}}
}

// RoundTrip makes the call. A request asking for text/event-stream gets its
// body streamed (read as it arrives); any other answer is read whole by
// fasthttp and handed over without a copy, the fasthttp.Response released
// when the body is closed.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(r.URL.String())
	req.Header.SetMethod(r.Method)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		_, err := io.Copy(req.BodyWriter(), r.Body)
		r.Body.Close()
		if err != nil {
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
			return nil, err
		}
	}
	stream := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	resp.StreamBody = stream
	deadline, ok := r.Context().Deadline()
	if !ok {
		deadline = time.Now().Add(24 * time.Hour)
	}

	// fasthttp takes no context: the call runs on its own goroutine and the
	// caller waits for it or for the context, whichever ends first. The side
	// that loses the race releases the request and the response.
	c := &callState{done: make(chan error, 1)}
	go func() {
		err := t.c.DoDeadline(req, resp, deadline)
		fasthttp.ReleaseRequest(req)
		c.done <- err
		if c.abandoned.Load() {
			if err == nil && stream {
				_ = resp.CloseBodyStream()
			}
			fasthttp.ReleaseResponse(resp)
		}
	}()
	var err error
	select {
	case err = <-c.done:
	case <-r.Context().Done():
		c.abandoned.Store(true)
		select {
		case err = <-c.done: // finished meanwhile: ours to release after all
			c.abandoned.Store(false)
		default:
			return nil, r.Context().Err()
		}
	}
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		if errors.Is(err, fasthttp.ErrTimeout) && r.Context().Err() != nil {
			return nil, r.Context().Err()
		}
		if errors.Is(err, fasthttp.ErrTimeout) {
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}

	h := make(http.Header, resp.Header.Len())
	for k, v := range resp.Header.All() {
		ck := string(k)
		h[ck] = append(h[ck], string(v))
	}
	out := &http.Response{
		Status: http.StatusText(resp.StatusCode()), StatusCode: resp.StatusCode(),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Request: r, ContentLength: -1,
	}
	if stream {
		out.Body = &streamBody{resp: resp, r: resp.BodyStream(), ctx: r.Context()}
	} else {
		b := resp.Body()
		out.ContentLength = int64(len(b))
		out.Body = &wholeBody{resp: resp, r: bytes.NewReader(b)}
	}
	return out, nil
}

// callState is one call's hand-over between RoundTrip and the goroutine
// that runs it.
type callState struct {
	done      chan error
	abandoned atomic.Bool
}

// wholeBody reads a buffered answer; Close gives the response back to
// fasthttp's pool (its buffer is the bytes read).
type wholeBody struct {
	resp   *fasthttp.Response
	r      *bytes.Reader
	closed bool
}

func (b *wholeBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("httpab: read after close")
	}
	return b.r.Read(p)
}

func (b *wholeBody) Close() error {
	if !b.closed {
		b.closed = true
		fasthttp.ReleaseResponse(b.resp)
	}
	return nil
}

// streamBody reads a streamed answer as it arrives. Close ends the stream
// (closing the connection if the answer was not read to its end) and gives
// the response back. A read after the call's context ended reports the
// context's error, as net/http's body does.
type streamBody struct {
	resp   *fasthttp.Response
	r      io.Reader
	ctx    context.Context
	closed atomic.Bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("httpab: read after close")
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return n, err
}

func (b *streamBody) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	return err
}
