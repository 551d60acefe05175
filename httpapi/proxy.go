package httpapi

import (
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/deer-runtime/deer/internal/jsonscan"
	"github.com/deer-runtime/deer/internal/taskid"
	"github.com/deer-runtime/deer/messages"
)

// notForwarded are request headers /proxy keeps from the upstream besides
// the hop-by-hop ones: deer frames the request and holds the credential,
// and it negotiates compression itself so that a cached answer is readable
// by every client (the transport decompresses what it asked for).
// Idempotency-Key is forwarded: an upstream that honours it can then
// deduplicate deer's own retries too.
var notForwarded = map[string]bool{
	"Host": true, "Authorization": true, "Content-Length": true, "Accept-Encoding": true,
}

// proxy passes any request under /proxy/{upstream}/ to that upstream as a
// task: method, path and raw query, body bytes and end-to-end headers in;
// status, end-to-end headers and body out.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request) {
	if s.refuseDraining(w, writeError) {
		return
	}
	cfg := s.rt.Config()
	upstream := r.PathValue("upstream")
	if _, ok := cfg.Upstreams[upstream]; !ok {
		writeError(w, http.StatusNotFound, messages.CodeUnknownTarget,
			fmt.Sprintf("upstream %q is not configured (configured: %s)", upstream, strings.Join(upstreamNames(cfg), ", ")), "upstream")
		return
	}
	if !slices.Contains(taskMethods, r.Method) {
		w.Header().Set("Allow", strings.Join(taskMethods, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" cannot be proxied; use "+strings.Join(taskMethods, ", "), "")
		return
	}
	path := proxiedPath(r.URL.EscapedPath())
	if path == "" {
		// Relaying the upstream's answer for its root would be a 404 that
		// reads like deer's own, about a path the client did not mean.
		writeError(w, http.StatusBadRequest, "missing_path", fmt.Sprintf(
			"/proxy/{upstream}/{path}: path is missing; it is appended to upstream %q's base_url, e.g. /proxy/%s/search", upstream, upstream), "path")
		return
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	if ierr := checkPath(path, "path"); ierr != nil {
		ierr.write(w, writeError)
		return
	}
	body, steer, ok := readInput(w, r, cfg, writeError)
	if !ok {
		return
	}
	task := &messages.Task{
		ID: taskid.New(), Upstream: upstream, Method: r.Method, Path: path, Header: forwardHeaders(r.Header), Body: body,
		Priority: steer.priority, Cache: steer.cache, Stream: wantsStream(r.Header, body), IdempotencyKey: steer.idemKey,
		CacheTTL: steer.cacheTTL, CacheNamespace: steer.namespace, Tenant: steer.tenant,
	}
	res, ok := s.submit(w, r, task, writeError)
	if !ok {
		return
	}
	s.relay(w, r, res, writeError)
}

// proxiedPath is the part of an escaped /proxy/{upstream}/… path after the
// upstream's name, kept escaped as the client sent it; "" when there is
// none (/proxy/sim, /proxy/sim/).
func proxiedPath(escaped string) string {
	rest := strings.TrimPrefix(escaped, "/proxy/")
	if i := strings.IndexByte(rest, '/'); i >= 0 && i < len(rest)-1 {
		return rest[i:]
	}
	return ""
}

// proxyWithoutUpstream answers /proxy and /proxy/, which name no upstream.
func (s *Server) proxyWithoutUpstream(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusBadRequest, "missing_upstream", fmt.Sprintf(
		"/proxy/{upstream}/{path}: upstream is missing (configured: %s)", strings.Join(upstreamNames(s.rt.Config()), ", ")), "upstream")
}

// forwardHeaders copies the end-to-end request headers the upstream should
// see; deer's own X-Deer-* steer the task and stay here.
func forwardHeaders(in http.Header) http.Header {
	drop := hopByHop(in)
	out := make(http.Header, len(in))
	for k, vs := range in {
		ck := http.CanonicalHeaderKey(k)
		if drop[ck] || notForwarded[ck] || strings.HasPrefix(ck, "X-Deer-") {
			continue
		}
		out[ck] = append([]string(nil), vs...)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// wantsStream decides whether a proxied answer is relayed as it arrives:
// when the client accepts server-sent events, or a JSON body asks for
// "stream": true (the OpenAI convention). Other answers are buffered, which
// lets them be cached.
func wantsStream(h http.Header, body []byte) bool {
	for _, v := range h.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" || len(body) == 0 {
		return false
	}
	stream := false
	_ = jsonscan.Members(body, func(key, value []byte) {
		if string(key) == "stream" && string(value) == "true" {
			stream = true
		}
	})
	return stream
}
