package httpapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/deer-runtime/deer/internal/jsonout"
	"github.com/deer-runtime/deer/internal/taskid"
	"github.com/deer-runtime/deer/messages"
)

// This file is the OpenAI routes' logic without net/http's request and
// response types, for an ingress on another HTTP stack. Its only user today
// is the HTTP-stack A/B harness (internal/httpab, a nested module, issue 12;
// see docs/benchmarks.md "HTTP stack: net/http vs fasthttp (A/B)"): it
// calls the same helpers as openAI and relay, so that the A/B compares HTTP
// stacks and not two versions of deer's logic. deerd's routes do not go
// through it.

// OpenAIRefusal is a request an OpenAI route refuses before any task
// exists: the status and OpenAI's error JSON.
type OpenAIRefusal struct {
	Status int
	Body   []byte
}

// OpenAITask is openAI's work up to the task: the steering headers (from h,
// which needs only the X-Deer-*, Idempotency-Key, Authorization and
// X-Api-Key values), the body's model and stream flag, the model resolved
// to an upstream. body must be the caller's to keep (the task holds it) and
// within server.max_body_bytes (the caller's HTTP stack bounds it).
func (s *Server) OpenAITask(ctx context.Context, path string, streamable bool, body []byte, h http.Header) (*messages.Task, *OpenAIRefusal) {
	if s.Draining() {
		return nil, openAIRefusal(http.StatusServiceUnavailable, messages.CodeShuttingDown, "deerd is shutting down and accepts no new work", "")
	}
	cfg := s.rt.Config()
	steer, ierr := readSteering(h, cfg)
	if ierr != nil {
		return nil, openAIRefusal(ierr.status, ierr.code, ierr.message, ierr.field)
	}
	model, stream, ierr := peekOpenAI(body)
	if ierr != nil {
		return nil, openAIRefusal(ierr.status, ierr.code, ierr.message, ierr.field)
	}
	upstream, upstreamModel, ok := s.rt.ResolveModel(ctx, model)
	if !ok {
		return nil, openAIRefusal(http.StatusNotFound, "model_not_found",
			"The model `"+model+"` does not exist or you do not have access to it.", "model")
	}
	if upstreamModel != model {
		if body, ierr = replaceModel(body, upstreamModel); ierr != nil {
			return nil, openAIRefusal(ierr.status, ierr.code, ierr.message, ierr.field)
		}
	}
	stream = stream && streamable
	header := http.Header{"Content-Type": {"application/json"}}
	if stream {
		header.Set("Accept", "text/event-stream")
	}
	return &messages.Task{
		ID: taskid.New(), Upstream: upstream, Method: http.MethodPost, Path: path, Header: header, Body: body,
		Priority: steer.priority, Cache: steer.cache, Stream: stream, IdempotencyKey: steer.idemKey,
		CacheTTL: steer.cacheTTL, CacheNamespace: steer.namespace, Tenant: steer.tenant,
	}, nil
}

// OpenAIBodyTooLarge is the refusal of a body over limit bytes.
func OpenAIBodyTooLarge(limit int64) *OpenAIRefusal {
	return openAIRefusal(http.StatusRequestEntityTooLarge, "body_too_large",
		"request body is over the limit of "+formatBytes(limit)+" (server.max_body_bytes)", "")
}

func openAIRefusal(status int, code, message, field string) *OpenAIRefusal {
	var b strings.Builder
	writeOpenAIErrorTo(&b, status, code, message, field)
	return &OpenAIRefusal{Status: status, Body: []byte(b.String())}
}

// writeOpenAIErrorTo writes writeOpenAIError's body.
func writeOpenAIErrorTo(w io.Writer, status int, code, message, field string) {
	typ := "invalid_request_error"
	switch {
	case status == http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case status >= 500:
		typ = "server_error"
	}
	d := openAIErrorDetail{Message: message, Type: typ, Code: code}
	if field != "" {
		d.Param = &field
	}
	_ = jsonout.Write(w, openAIError{Error: d})
}

// OpenAIAnswer is relay's decision for res, as data: the status, each
// header value through set (the X-Deer-* task headers, then the upstream's
// end-to-end headers, or the error's), and either the body (every answer
// but a successful stream) or the stream to copy chunk by chunk. A stream
// that is not relayed is closed here.
func (s *Server) OpenAIAnswer(res *messages.TaskResult, set func(name, value string)) (status int, body []byte, stream io.ReadCloser) {
	if res.ID != "" {
		set(headerTaskID, res.ID)
	}
	if res.Cache != "" {
		set(headerCache, res.Cache)
	}
	set(headerAttempts, strconv.Itoa(res.Attempts))
	if res.Status != messages.TaskSucceeded {
		if res.Stream != nil {
			_ = res.Stream.Close()
		}
		if !(res.UpstreamStatus >= 400 && res.UpstreamStatus < 500) {
			code, msg := messages.CodeInternal, "the task failed"
			if res.Err != nil {
				code, msg = res.Err.Code, res.Err.Message
			}
			status = failureStatus(code)
			if status == http.StatusTooManyRequests {
				set("Retry-After", strconv.Itoa(s.retryAfter(res)))
			}
			field := ""
			if code == messages.CodeUnknownTarget {
				field = "upstream"
			}
			set("Content-Type", "application/json")
			var b strings.Builder
			writeOpenAIErrorTo(&b, status, code, msg, field)
			return status, []byte(b.String()), nil
		}
	}
	status = res.UpstreamStatus
	if status < 100 || status > 999 {
		status = http.StatusBadGateway
	}
	drop := hopByHop(res.Header)
	for k, vs := range res.Header {
		ck := http.CanonicalHeaderKey(k)
		if drop[ck] || ck == "Content-Length" || strings.HasPrefix(ck, "X-Deer-") {
			continue
		}
		for _, v := range vs {
			set(ck, v)
		}
	}
	if res.Stream != nil && res.Status == messages.TaskSucceeded {
		set("X-Accel-Buffering", "no")
		return status, nil, res.Stream
	}
	return status, res.Body, nil
}

// StreamBuffer is the most one read of an upstream stream forwards at
// once (streamBody's buffer), for another ingress to relay alike.
const StreamBuffer = streamBuffer
