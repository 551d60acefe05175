package httpab

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/httpapi"
)

// Ingress serves the hot OpenAI routes on fasthttp. Everything a route
// decides comes from httpapi (OpenAITask, OpenAIAnswer); this file only
// carries bytes between fasthttp and those.
type Ingress struct {
	api *httpapi.Server
	rt  *deer.Runtime
}

// NewIngress wraps api, deerd's handler over rt.
func NewIngress(api *httpapi.Server, rt *deer.Runtime) *Ingress { return &Ingress{api: api, rt: rt} }

// Server is a fasthttp server for the ingress. The request body is bounded
// by server.max_body_bytes as it is at start-up: fasthttp reads the whole
// body before the handler runs, so the bound must be the server's (a lower
// live value is enforced again in the handler). Over the bound fasthttp
// calls ErrorHandler, which answers 413 in OpenAI's shape and closes the
// connection.
func (in *Ingress) Server() *fasthttp.Server {
	limit := in.rt.Config().Server.MaxBodyBytes
	return &fasthttp.Server{
		Handler:               in.Handle,
		MaxRequestBodySize:    int(limit),
		NoDefaultServerHeader: true,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if err == fasthttp.ErrBodyTooLarge {
				ctx.SetConnectionClose()
				refuse(ctx, httpapi.OpenAIBodyTooLarge(limit))
				return
			}
			ctx.SetStatusCode(http.StatusBadRequest)
			ctx.SetBodyString("bad request: " + err.Error())
		},
	}
}

// Handle serves one request: the two routes, 404 elsewhere, 405 for a
// method other than POST.
func (in *Ingress) Handle(ctx *fasthttp.RequestCtx) {
	var path string
	streamable := false
	switch string(ctx.Path()) {
	case "/v1/chat/completions":
		path, streamable = "/v1/chat/completions", true
	case "/v1/embeddings":
		path = "/v1/embeddings"
	default:
		ctx.SetContentType("application/json")
		ctx.SetStatusCode(http.StatusNotFound)
		ctx.SetBodyString(`{"error":{"code":"not_found","message":"the A/B ingress serves only POST /v1/chat/completions and /v1/embeddings"}}`)
		return
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", http.MethodPost)
		ctx.SetContentType("application/json")
		ctx.SetStatusCode(http.StatusMethodNotAllowed)
		ctx.SetBodyString(`{"error":{"code":"method_not_allowed","message":"use POST"}}`)
		return
	}
	limit := in.rt.Config().Server.MaxBodyBytes
	if int64(len(ctx.PostBody())) > limit {
		ctx.SetConnectionClose()
		refuse(ctx, httpapi.OpenAIBodyTooLarge(limit))
		return
	}
	// fasthttp reuses the request's buffer once the handler returns; the
	// task outlives it (the runtime keeps it, the cache may store it).
	body := append([]byte(nil), ctx.PostBody()...)

	// fasthttp has no request context that ends when the client leaves
	// (RequestCtx.Done is closed only at server shutdown): watchClose
	// watches the connection and cancels the task's context.
	tctx, cancel := context.WithCancel(context.Background())
	stopWatch := watchClose(ctx.Conn(), cancel)
	finish := func() {
		stopWatch()
		cancel()
	}
	task, refusal := in.api.OpenAITask(tctx, path, streamable, body, steeringHeader(&ctx.Request.Header))
	if refusal != nil {
		finish()
		refuse(ctx, refusal)
		return
	}
	res, err := in.rt.Submit(tctx, task)
	if err != nil {
		finish()
		if tctx.Err() != nil {
			ctx.SetConnectionClose() // the client is gone: nobody to answer
			return
		}
		ctx.SetStatusCode(http.StatusInternalServerError)
		ctx.SetBodyString(err.Error())
		return
	}
	h := &ctx.Response.Header
	status, rbody, stream := in.api.OpenAIAnswer(res, func(k, v string) { h.Add(k, v) })
	ctx.SetStatusCode(status)
	if stream == nil {
		finish()
		ctx.Response.SetBodyRaw(rbody)
		return
	}
	relayStream(ctx, tctx, stream, finish)
}

// relayStream copies stream to the client chunk by chunk. The writer runs
// after the handler has returned, on a goroutine of fasthttp's; each Flush
// sends one chunk. The stream is closed when it ends, when a write fails,
// or as soon as gone ends (the client hung up: watchClose), which also
// unblocks a read waiting on a slow upstream. An upstream that breaks off
// mid-stream closes the connection, so that the client sees a truncated
// answer (net/http's ErrAbortHandler), not a complete one. done runs when
// the copy ends, before fasthttp reads the next request.
func relayStream(ctx *fasthttp.RequestCtx, gone context.Context, stream io.ReadCloser, done func()) {
	conn := ctx.Conn()
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		var once sync.Once
		closeStream := func() { once.Do(func() { _ = stream.Close() }) }
		stop := context.AfterFunc(gone, closeStream)
		defer func() {
			stop()
			closeStream()
			done()
		}()
		if w.Flush() != nil {
			return
		}
		buf := make([]byte, httpapi.StreamBuffer)
		for {
			n, err := stream.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if w.Flush() != nil {
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				if gone.Err() == nil {
					_ = conn.Close()
				}
				return
			}
		}
	})
}

func refuse(ctx *fasthttp.RequestCtx, r *httpapi.OpenAIRefusal) {
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(r.Status)
	ctx.Response.SetBodyRaw(r.Body)
}

// steeringNames are the request headers httpapi.Server.OpenAITask reads.
var steeringNames = [...]string{"X-Deer-Priority", "X-Deer-Cache", "X-Deer-Cache-TTL", "X-Deer-Cache-Namespace", "Idempotency-Key", "Authorization", "X-Api-Key"}

// steeringHeader copies those headers (and only those) into an
// http.Header, so that httpapi stays the one parser of them.
func steeringHeader(h *fasthttp.RequestHeader) http.Header {
	var out http.Header
	for _, k := range steeringNames {
		vs := h.PeekAll(k)
		if len(vs) == 0 {
			continue
		}
		if out == nil {
			out = make(http.Header, 2)
		}
		for _, v := range vs {
			out[k] = append(out[k], string(v))
		}
	}
	return out
}

// watchClose calls cancel when the client closes (or resets) its
// connection before stop is called. A goroutine waits for the socket to
// become readable and peeks at it (MSG_PEEK: nothing is consumed, fasthttp
// reads the next request as usual): end of stream or an error is the
// client gone; bytes are the next request of a pipelining client, and the
// watch ends (it cannot tell more). stop expires the read deadline to end
// the wait, waits for the goroutine, and clears the deadline for fasthttp's
// next read. Only a plain TCP connection can be watched (not TLS).
func watchClose(c net.Conn, cancel context.CancelFunc) (stop func()) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b [1]byte
		_ = raw.Read(func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				return false // nothing yet: wait for readability
			}
			if n == 0 || err != nil {
				cancel()
			}
			return true
		})
	}()
	return func() {
		_ = c.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = c.SetReadDeadline(time.Time{})
	}
}
