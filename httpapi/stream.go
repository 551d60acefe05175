package httpapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/deer-runtime/deer/messages"
)

// streamBuffer is the most one read of an upstream stream forwards at once;
// each read is flushed to the client as soon as it arrives.
const streamBuffer = 32 << 10

// hopByHopHeaders belong to one connection and are never relayed (RFC 9110
// §7.6.1), in either direction.
var hopByHopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// fixedHopByHop is hopByHopHeaders as a set; read-only once built.
var fixedHopByHop = func() map[string]bool {
	drop := make(map[string]bool, len(hopByHopHeaders))
	for _, k := range hopByHopHeaders {
		drop[k] = true
	}
	return drop
}()

// hopByHop is the set of canonical header names not to relay: the fixed
// ones and those the Connection header names. Without a Connection header
// (most answers) it is the shared fixed set, built once instead of on
// every relay; callers only read it.
func hopByHop(h map[string][]string) map[string]bool {
	conn := http.Header(h).Values("Connection")
	if len(conn) == 0 {
		return fixedHopByHop
	}
	drop := make(map[string]bool, len(hopByHopHeaders)+2)
	for k := range fixedHopByHop {
		drop[k] = true
	}
	for _, v := range conn {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				drop[http.CanonicalHeaderKey(name)] = true
			}
		}
	}
	return drop
}

// relay answers with the upstream's own answer: its status, its end-to-end
// headers and its body, streamed chunk by chunk when the result carries a
// stream. A failed task is answered with ew in the route's error shape,
// except that an upstream 4xx (a 429 that outlasted the retries) is passed
// on as the upstream gave it: the client can act on the provider's verdict
// and its Retry-After.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, res *messages.TaskResult, ew errWriter) {
	setTaskHeaders(w, res)
	if res.Status != messages.TaskSucceeded {
		if res.Stream != nil {
			_ = res.Stream.Close()
		}
		if !(res.UpstreamStatus >= 400 && res.UpstreamStatus < 500) {
			s.writeFailure(w, res, ew)
			return
		}
	}
	status := res.UpstreamStatus
	if status < 100 || status > 999 {
		status = http.StatusBadGateway // a result without an upstream status has nothing to relay
	}
	copyHeaders(w.Header(), res.Header)
	if res.Stream != nil && res.Status == messages.TaskSucceeded {
		streamBody(w, r, status, res.Stream)
		return
	}
	if r.Method == http.MethodHead {
		// No body to measure: the upstream's length describes the resource.
		if cl := http.Header(res.Header).Get("Content-Length"); cl != "" {
			w.Header().Set("Content-Length", cl)
		}
	} else if len(res.Body) > autoContentLength {
		w.Header().Set("Content-Length", strconv.Itoa(len(res.Body)))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(res.Body)
	}
}

// autoContentLength is the largest body relay leaves net/http to measure: a
// handler that writes less than a few KB at once and returns gets its
// Content-Length from net/http (http.ResponseWriter's Write), the same
// header without formatting a number and a slice for it on every answer.
const autoContentLength = 1024

// copyHeaders sets the upstream's end-to-end headers on dst. Content-Length
// is deer's to set (the body may have been decompressed on the way), and
// X-Deer-* are deer's own. The values are shared, not copied: nothing
// writes into a ResponseWriter's header values (net/http copies them when
// it writes the header), and, capped at their length, an Add copies first.
func copyHeaders(dst http.Header, src map[string][]string) {
	drop := hopByHop(src)
	for k, vs := range src {
		ck := http.CanonicalHeaderKey(k)
		if drop[ck] || ck == "Content-Length" || strings.HasPrefix(ck, "X-Deer-") {
			continue
		}
		dst[ck] = vs[:len(vs):len(vs)]
	}
}

// streamBody writes status and then copies body to the client as it
// arrives, flushing after every read, without a Content-Length. body is
// closed when it ends, when writing fails, or as soon as the client goes
// away (which also unblocks a read waiting on a slow upstream, so the
// connection and the worker are released at once).
func streamBody(w http.ResponseWriter, r *http.Request, status int, body io.ReadCloser) {
	var once sync.Once
	closeBody := func() { once.Do(func() { _ = body.Close() }) }
	stop := context.AfterFunc(r.Context(), closeBody)
	defer func() {
		stop()
		closeBody()
	}()

	h := w.Header()
	h.Del("Content-Length")
	h.Set("X-Accel-Buffering", "no") // tell a reverse proxy in front not to buffer either
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	buf := make([]byte, streamBuffer)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left; nobody to tell
			}
			// The upstream broke off mid-stream: abort the response so the
			// client sees a truncated answer, not a complete one.
			panic(http.ErrAbortHandler)
		}
	}
}
