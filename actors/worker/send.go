package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/deer-runtime/deer/actors/retry"
	"github.com/deer-runtime/deer/messages"
)

// request builds the task's HTTP request to endpoint. The caller's
// Authorization never goes out: the upstream's key (api_key_env) does.
func (c *call) request(ctx context.Context, endpoint string) (*http.Request, error) {
	method := c.task.Method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if len(c.task.Body) > 0 {
		body = bytes.NewReader(c.task.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(endpoint), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.task.Header {
		if len(vs) == 0 {
			continue
		}
		// The task's values are shared, not copied (one slice per header
		// saved): nothing on the way out writes into them, and capped at
		// their length an append would copy first.
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if prev, ok := req.Header[ck]; ok {
			req.Header[ck] = append(prev, vs...)
		} else {
			req.Header[ck] = vs[:len(vs):len(vs)]
		}
	}
	req.Header.Del("Authorization") // the credential is the upstream's, never the caller's
	if c.up.APIKeyEnv != "" {
		if key := os.Getenv(c.up.APIKeyEnv); key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// maxURLs bounds the URLs an executor remembers.
const maxURLs = 64

// urlKey is an endpoint and a task's path.
type urlKey struct{ endpoint, path string }

// url is the task's URL on endpoint. The executor remembers the URLs it
// joined (the first maxURLs: a few API paths in practice), so a call does
// not build the same string again.
func (c *call) url(endpoint string) string {
	k := urlKey{endpoint, c.task.Path}
	if u, ok := c.urls[k]; ok {
		return u
	}
	u := strings.TrimRight(endpoint, "/") + c.task.Path
	if c.urls != nil && len(c.urls) < maxURLs {
		c.urls[k] = u
	}
	return u
}

// answer is what one HTTP call brought back.
type answer struct {
	resp       *http.Response // nil when the call failed before a response
	body       []byte         // read in full, except a streamed task's 2xx body (resp.Body)
	status     int            // 0 without a response
	retryAfter time.Duration  // the upstream's Retry-After, when it sent one
	took       time.Duration  // time spent on the upstream
}

// send makes the HTTP call on client. It reads the answer's body, except a
// streamed task's 2xx body, which its receiver reads.
func (c *call) send(client *http.Client, req *http.Request) (answer, error) {
	var ans answer
	start := c.timeNow()
	resp, err := roundTrip(client, req)
	if err == nil && !(c.task.Stream && resp.StatusCode/100 == 2) {
		ans.body, err = readAll(resp.Body, resp.ContentLength)
		resp.Body.Close()
	}
	ans.took = c.timeNow().Sub(start)
	if resp != nil {
		ans.resp, ans.status = resp, resp.StatusCode
		if ra, ok := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), c.timeNow()); ok {
			ans.retryAfter = ra
		}
	}
	return ans, err
}

// roundTrip sends req on client's transport without http.Client.Do, which
// deer's clients gain nothing from (they follow no redirects and keep no
// cookies) but which copies the request's headers and URL for redirects on
// every call: six of a task's forty allocations. Errors are wrapped as Do
// wraps them (*url.Error: method, URL without password, cause), so messages
// and errors.Is/As read the same. A URL with user info goes through Do,
// which turns it into Basic authentication.
func roundTrip(client *http.Client, req *http.Request) (*http.Response, error) {
	if client.Transport == nil || req.URL.User != nil || client.Jar != nil || client.Timeout != 0 {
		return client.Do(req)
	}
	resp, err := client.Transport.RoundTrip(req)
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.String(), Err: err}
	}
	if resp == nil {
		return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.String(),
			Err: errors.New("http: RoundTripper implementation returned a nil *Response with a nil error")}
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	return resp, nil
}

// urlErrorOp is the Op of Do's *url.Error: "Post" for POST.
func urlErrorOp(method string) string {
	if method == "" {
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}

// result is the task's result for an answer that came back whole (or, for
// a stream, whose headers did): succeeded, unless the upstream failed or
// throttled.
func (c *call) result(ans answer) *messages.TaskResult {
	res := &messages.TaskResult{
		ID: c.task.ID, Cache: cacheLabel(c.task), Status: messages.TaskSucceeded,
		UpstreamStatus: ans.status, Header: ans.resp.Header,
	}
	if c.task.Stream && ans.status/100 == 2 {
		res.Stream = ans.resp.Body
		return res
	}
	res.Body = ans.body
	if ans.status >= 500 || ans.status == http.StatusTooManyRequests {
		// The upstream failed or throttled: the call did not do its job.
		res.Status = messages.TaskFailed
		res.Err = &messages.TaskError{Code: messages.CodeUpstream, Message: fmt.Sprintf("upstream %s answered %d", c.task.Upstream, ans.status)}
	}
	return res
}

// maxPresize bounds the buffer readAll sizes from a Content-Length up
// front: a larger (or a false) length grows as the body arrives instead.
const maxPresize = 1 << 20

// readAll is io.ReadAll with the buffer sized from the body's announced
// length (size, -1 when unknown), so an answer is read into one allocation
// of its size instead of a 512-byte buffer grown (and copied) to it. It
// reads to io.EOF, which lets the transport reuse the connection.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > maxPresize {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // +1: room for the read that sees the end
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) { // longer than announced: grow as io.ReadAll does
			b = append(b, 0)[:len(b)]
		}
	}
}
