package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/taskid"
	"github.com/deer-runtime/deer/messages"
)

// Headers of the task path (SPEC §4). Requests steer with the first five;
// every task answer carries X-Deer-Cache (where the answer came from),
// X-Deer-Task-Id and X-Deer-Attempts.
const (
	headerPriority       = "X-Deer-Priority"
	headerCache          = "X-Deer-Cache"
	headerCacheTTL       = "X-Deer-Cache-TTL"
	headerCacheNamespace = "X-Deer-Cache-Namespace"
	headerIdempotency    = "Idempotency-Key"
	headerTaskID         = "X-Deer-Task-Id"
	headerAttempts       = "X-Deer-Attempts"
)

const (
	// maxIdempotencyKey bounds an Idempotency-Key (the router keeps keys
	// for ten minutes; an unbounded key is unbounded memory).
	maxIdempotencyKey = 255
	// maxCacheNamespace bounds X-Deer-Cache-Namespace, which is hashed
	// into the cache key: a namespace, not a payload.
	maxCacheNamespace = 200
	// maxCacheTTL bounds X-Deer-Cache-TTL as conf bounds cache.default_ttl
	// (365 days), which also keeps it within a time.Duration.
	maxCacheTTL = 365 * 24 * 3600
)

// canonicalCacheTTL is headerCacheTTL as net/http keys it: looking up the
// header by its spelled name would canonicalize it, allocating, on every
// request.
var canonicalCacheTTL = http.CanonicalHeaderKey(headerCacheTTL)

// statusClientClosed is nginx's "client closed request", the answer to a
// cancelled task. 408 would be the standard alternative, but the OpenAI SDKs
// (and so LangChain) retry 408 on their own, which would undo a deliberate
// cancel; 499 is a plain 4xx to them.
const statusClientClosed = 499

// errWriter answers an error in a route's own shape: SPEC §4's for deer's
// endpoints, OpenAI's for the OpenAI-compatible ones.
type errWriter func(w http.ResponseWriter, status int, code, message, field string)

// inputError is a refused request: what to answer, before any task exists.
type inputError struct {
	status  int
	code    string
	message string
	field   string
}

func (e *inputError) write(w http.ResponseWriter, ew errWriter) {
	ew(w, e.status, e.code, e.message, e.field)
}

func badInput(code, field, format string, args ...any) *inputError {
	return &inputError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...), field: field}
}

// readLimited reads a request body of at most limit bytes. A body whose
// Content-Length is within the limit is read into a buffer of its size (net/http
// ends it at that length); others go through http.MaxBytesReader, which
// also refuses a longer body and closes the connection after the answer.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *inputError) {
	if n := r.ContentLength; n >= 0 && n <= limit {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, badInput("bad_body", "", "reading request body: %v", err)
		}
		return body, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			return nil, &inputError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
				message: "request body is over the limit of " + formatBytes(limit) + " (server.max_body_bytes)"}
		}
		return nil, badInput("bad_body", "", "reading request body: %v", err)
	}
	return body, nil
}

// refuseDraining answers 503 to new work once shutdown has begun.
func (s *Server) refuseDraining(w http.ResponseWriter, ew errWriter) bool {
	if !s.Draining() {
		return false
	}
	w.Header().Set("Connection", "close")
	ew(w, http.StatusServiceUnavailable, messages.CodeShuttingDown, "deerd is shutting down and accepts no new work", "")
	return true
}

// steering is what the request headers ask of a task.
type steering struct {
	priority  int
	cache     string
	cacheTTL  time.Duration // 0: cache.default_ttl
	namespace string
	tenant    string // a hash of the client's Authorization header; "" without one
	idemKey   string
}

// readInput reads what every task-making route reads first: the body
// (bounded by max_body_bytes) and the X-Deer-* steering headers. On bad
// input it answers with ew and reports false.
func readInput(w http.ResponseWriter, r *http.Request, cfg *conf.Config, ew errWriter) ([]byte, steering, bool) {
	body, ierr := readLimited(w, r, cfg.Server.MaxBodyBytes)
	if ierr == nil {
		var steer steering
		if steer, ierr = readSteering(r.Header, cfg); ierr == nil {
			return body, steer, true
		}
	}
	ierr.write(w, ew)
	return nil, steering{}, false
}

// readSteering parses X-Deer-Priority, X-Deer-Cache, X-Deer-Cache-TTL,
// X-Deer-Cache-Namespace and Idempotency-Key, and derives the tenant from
// Authorization. Absent headers leave the defaults: normal priority, cache
// "auto", cache.default_ttl, no namespace.
func readSteering(h http.Header, cfg *conf.Config) (steering, *inputError) {
	st := steering{priority: normalPriority(cfg), cache: messages.CacheAuto, tenant: tenantOf(h)}
	if v := h.Get(headerPriority); v != "" {
		p, ok := parsePriorityName(strings.TrimSpace(v), cfg)
		if !ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 && n < cfg.ParallelExecution.PriorityLevels {
				p, ok = n, true
			}
		}
		if !ok {
			return st, badInput("invalid_header", headerPriority, "%s must be a level 0..%d or high, normal, low; got %q",
				headerPriority, cfg.ParallelExecution.PriorityLevels-1, v)
		}
		st.priority = p
	}
	if v := h.Get(headerCache); v != "" {
		c := strings.ToLower(strings.TrimSpace(v))
		if !validCacheMode(c) {
			return st, badInput("invalid_header", headerCache, "%s must be auto, bypass, refresh or no-store; got %q", headerCache, v)
		}
		st.cache = c
	}
	if vs := h[canonicalCacheTTL]; len(vs) > 0 {
		secs, ok := parseSeconds(vs[0])
		// > 0 as a Duration: 1e-10 s would round to 0, which means "the default".
		if len(vs) > 1 || !ok || conf.Seconds(secs) <= 0 || secs > maxCacheTTL {
			return st, badInput("invalid_header", headerCacheTTL,
				"%s must be one number of seconds > 0 and <= %d (365 days); got %q", headerCacheTTL, maxCacheTTL, strings.Join(vs, ", "))
		}
		st.cacheTTL = conf.Seconds(secs)
	}
	if vs := h.Values(headerCacheNamespace); len(vs) > 0 {
		ns := vs[0]
		if len(vs) > 1 || ns == "" || len(ns) > maxCacheNamespace || !visibleASCII(ns) {
			return st, badInput("invalid_header", headerCacheNamespace,
				"%s must be one value of 1..%d visible ASCII characters (no spaces)", headerCacheNamespace, maxCacheNamespace)
		}
		st.namespace = ns
	}
	if vs := h.Values(headerIdempotency); len(vs) > 0 {
		k := vs[0]
		if len(vs) > 1 || k == "" || len(k) > maxIdempotencyKey || !printableASCII(k) {
			return st, badInput("invalid_header", headerIdempotency,
				"%s must be one value of 1..%d printable ASCII characters", headerIdempotency, maxIdempotencyKey)
		}
		st.idemKey = k
	}
	return st, nil
}

// normalPriority is the level "normal" names: the middle one (levels/2),
// so with the default 3 levels high=0, normal=1, low=2.
func normalPriority(cfg *conf.Config) int { return cfg.ParallelExecution.PriorityLevels / 2 }

func parsePriorityName(v string, cfg *conf.Config) (int, bool) {
	switch strings.ToLower(v) {
	case "high":
		return 0, true
	case "normal":
		return normalPriority(cfg), true
	case "low":
		return cfg.ParallelExecution.PriorityLevels - 1, true
	}
	return 0, false
}

func validCacheMode(c string) bool {
	switch c {
	case messages.CacheAuto, messages.CacheBypass, messages.CacheRefresh, messages.CacheNoStore:
		return true
	}
	return false
}

// parseSeconds reads a plain decimal number of seconds ("60", "1.5",
// "2e3"), refusing what strconv.ParseFloat also takes but no one means in
// a header: NaN, Inf, hex floats, digit separators.
func parseSeconds(v string) (float64, bool) {
	v = strings.TrimSpace(v)
	if v == "" || strings.ContainsFunc(v, func(r rune) bool { return !strings.ContainsRune("0123456789+-.eE", r) }) {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// tenantOf identifies the caller by a hash of its credential: the
// Authorization header and the X-Api-Key header (every value, in order).
// Tenants never see each other's cached answers (unless
// cache.share_across_keys), tasks or idempotent results, while the
// credential itself goes no further than this function. "" without one.
func tenantOf(h http.Header) string {
	vs := h.Values("Authorization")
	for _, k := range h.Values("X-Api-Key") {
		// Marked, so that a key never hashes like the same Authorization
		// value; a caller with Authorization alone keeps its hash.
		vs = append(vs[:len(vs):len(vs)], "X-Api-Key: "+k)
	}
	if len(vs) == 0 {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.Join(vs, "\n")))
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// submit runs task and waits for its result. A false return means the
// answer has been written (the runtime did not answer) or nobody is left
// to answer (the client went away; the runtime cancels the task).
func (s *Server) submit(w http.ResponseWriter, r *http.Request, task *messages.Task, ew errWriter) (*messages.TaskResult, bool) {
	res, err := s.rt.Submit(r.Context(), task)
	if err != nil {
		s.runtimeError(w, r, err, ew)
		return nil, false
	}
	return res, true
}

func (s *Server) runtimeError(w http.ResponseWriter, r *http.Request, err error, ew errWriter) {
	switch {
	case r.Context().Err() != nil:
		// The client is gone; there is nobody to answer.
	case errors.Is(err, deer.ErrRouterDown):
		w.Header().Set("Retry-After", "1")
		ew(w, http.StatusServiceUnavailable, "unavailable", "the task router is not running: "+err.Error(), "")
	default:
		s.log.Error().Err(err).Str("path", r.URL.Path).Msg("task submission failed")
		ew(w, http.StatusInternalServerError, messages.CodeInternal, err.Error(), "")
	}
}

// failureStatus is the HTTP status for a failed task's error code.
func failureStatus(code string) int {
	switch code {
	case messages.CodeQueueFull:
		return http.StatusTooManyRequests
	case messages.CodeShuttingDown, messages.CodeCircuitOpen, messages.CodeKeyMissing:
		return http.StatusServiceUnavailable
	case messages.CodeUnknownTarget:
		return http.StatusNotFound
	case messages.CodeBadRequest:
		return http.StatusBadRequest
	case messages.CodeTimeout:
		return http.StatusGatewayTimeout
	case messages.CodeUpstream:
		return http.StatusBadGateway
	case messages.CodeCancelled, messages.CodeClientClosed:
		return statusClientClosed
	}
	return http.StatusInternalServerError
}

// refused reports a failure that /v1/tasks answers with an HTTP error
// instead of a failed result: the task was never run.
func refused(res *messages.TaskResult) bool {
	if res.Status != messages.TaskFailed || res.Err == nil {
		return false
	}
	switch res.Err.Code {
	case messages.CodeQueueFull, messages.CodeShuttingDown, messages.CodeUnknownTarget, messages.CodeBadRequest,
		messages.CodeKeyMissing:
		return true
	}
	return false
}

// writeFailure answers a failed task in the route's error shape.
func (s *Server) writeFailure(w http.ResponseWriter, res *messages.TaskResult, ew errWriter) {
	code, msg := messages.CodeInternal, "the task failed"
	if res.Err != nil {
		code, msg = res.Err.Code, res.Err.Message
	}
	status := failureStatus(code)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(s.retryAfter(res)))
	}
	field := ""
	if code == messages.CodeUnknownTarget {
		field = "upstream"
	}
	ew(w, status, code, msg, field)
}

// retryAfter is the Retry-After, in whole seconds (1..60), for a task
// refused because the queue is full: the router's own hint when it gives
// one, else the time the queue needs to drain by half at the upstream's
// highest allowed rate (rate_limit.max_rate).
func (s *Server) retryAfter(res *messages.TaskResult) int {
	if v, err := strconv.Atoi(http.Header(res.Header).Get("Retry-After")); err == nil && v >= 1 {
		return min(v, 60)
	}
	cfg := s.rt.Config()
	secs := float64(cfg.ParallelExecution.QueueSize) / 2 / max(cfg.RateLimit.MaxRate, 1)
	return int(min(max(math.Ceil(secs), 1), 60))
}

// setTaskHeaders adds the task's X-Deer-* answer headers. The values deer
// knows ahead (X-Deer-Cache's, small attempt counts) are shared slices, set
// without an allocation: a ResponseWriter's header values are only read
// (net/http copies them when the header is written; Set replaces a value,
// Add appends to a full slice, which copies).
func setTaskHeaders(w http.ResponseWriter, res *messages.TaskResult) {
	h := w.Header()
	if res.ID != "" {
		h[headerTaskID] = []string{res.ID}
	}
	if res.Cache != "" {
		if v, ok := cacheValues[res.Cache]; ok {
			h[headerCache] = v
		} else {
			h[headerCache] = []string{res.Cache}
		}
	}
	if n := res.Attempts; n >= 0 && n < len(attemptValues) {
		h[headerAttempts] = attemptValues[n]
	} else {
		h[headerAttempts] = []string{strconv.Itoa(n)}
	}
}

// cacheValues and attemptValues are the shared X-Deer-Cache and
// X-Deer-Attempts values, each slice full (len == cap).
var (
	cacheValues = func() map[string][]string {
		m := map[string][]string{}
		for _, v := range []string{messages.CacheMiss, messages.CacheBypass, messages.CacheHitL1, messages.CacheHitL2,
			messages.CacheHitL3, messages.CacheCoalesced, messages.CacheRefresh, messages.CacheNoStore} {
			m[v] = []string{v}
		}
		return m
	}()
	attemptValues = func() [][]string {
		vs := make([][]string, 16)
		for i := range vs {
			vs[i] = []string{strconv.Itoa(i)}
		}
		return vs
	}()
)

// --- POST /v1/tasks, GET and DELETE /v1/tasks/{id} ---

// taskRequest is the body of POST /v1/tasks.
type taskRequest struct {
	Upstream string            `json:"upstream"`
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Headers  map[string]string `json:"headers"`
	Body     json.RawMessage   `json:"body"`
	Priority json.RawMessage   `json:"priority"`
	Cache    string            `json:"cache"`
	Timeout  *float64          `json:"timeout"`
	Async    bool              `json:"async"`
	Stream   bool              `json:"stream"`
}

var taskMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions}

// deerOwnedHeaders may not be set through a task: deer frames the request,
// holds the credential and negotiates compression itself (a compressed body
// in the cache would reach clients that cannot read it).
var deerOwnedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Authorization": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Upgrade": true, "Accept-Encoding": true,
}

func (s *Server) postTask(w http.ResponseWriter, r *http.Request) {
	if s.refuseDraining(w, writeError) {
		return
	}
	cfg := s.rt.Config()
	raw, steer, ok := readInput(w, r, cfg, writeError)
	if !ok {
		return
	}
	req, ierr := decodeTaskRequest(raw)
	if ierr != nil {
		ierr.write(w, writeError)
		return
	}
	task, ierr := req.task(cfg, steer)
	if ierr != nil {
		ierr.write(w, writeError)
		return
	}

	if req.Async {
		id, res, err := s.rt.SubmitAsync(r.Context(), task)
		switch {
		case err != nil:
			s.runtimeError(w, r, err, writeError)
		case res != nil && refused(res):
			setTaskHeaders(w, res)
			s.writeFailure(w, res, writeError)
		case res != nil:
			setTaskHeaders(w, res)
			writeJSON(w, http.StatusOK, resultView(res))
		default:
			w.Header().Set(headerTaskID, id)
			w.Header().Set("Location", "/v1/tasks/"+url.PathEscape(id))
			writeJSON(w, http.StatusAccepted, taskView{ID: id, Status: messages.TaskQueued})
		}
		return
	}

	res, ok := s.submit(w, r, task, writeError)
	if !ok {
		return
	}
	setTaskHeaders(w, res)
	switch {
	case refused(res):
		s.writeFailure(w, res, writeError)
	case task.Stream:
		// A stream cannot sit inside a JSON envelope: the answer is the
		// upstream's own, as on /proxy.
		s.relay(w, r, res, writeError)
	default:
		writeJSON(w, http.StatusOK, resultView(res))
	}
}

// decodeTaskRequest decodes strictly (see decodeStrict).
func decodeTaskRequest(raw []byte) (*taskRequest, *inputError) {
	var req taskRequest
	if ierr := decodeStrict(raw, &req, "upstream, method, path, headers, body, priority, cache, timeout, async, stream"); ierr != nil {
		return nil, ierr
	}
	return &req, nil
}

// decodeStrict decodes raw into v: one JSON object, known fields only (an
// unknown one is named, with the list known), each of its type.
func decodeStrict(raw []byte, v any, known string) *inputError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, known)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badInput("invalid_json", "", "the body must hold one JSON object and nothing after it")
	}
	return nil
}

// jsonError names what is wrong with a JSON body, and where; known lists
// the body's fields for an unknown one.
func jsonError(err error, known string) *inputError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return badInput("invalid_json", "", "the body is empty; it must be a JSON object")
	case errors.As(err, &syntax):
		return badInput("invalid_json", "", "the body is not valid JSON (at byte %d): %v", syntax.Offset, err)
	case errors.As(err, &typ) && typ.Field == "headers" && typ.Type.Kind().String() == "string":
		return badInput("invalid_type", typ.Field, "headers must map names to string values, not to a JSON %s", typ.Value)
	case errors.As(err, &typ) && typ.Field != "":
		return badInput("invalid_type", typ.Field, "%s must be %s, not a JSON %s", typ.Field, kindName(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &typ):
		return badInput("invalid_json", "", "the body must be a JSON object, not a JSON %s", typ.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		return badInput("unknown_field", field, "unknown field %s (known: %s)", name, known)
	}
	return badInput("invalid_json", "", "the body is not valid JSON: %v", err)
}

func kindName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "float64", "float32":
		return "a number"
	case "int", "int64":
		return "an integer"
	}
	return "a " + kind
}

// task validates the request against the configuration in force.
func (req *taskRequest) task(cfg *conf.Config, st steering) (*messages.Task, *inputError) {
	if req.Upstream == "" {
		return nil, badInput("missing_field", "upstream", "upstream is required: the name of a configured upstream")
	}
	if _, ok := cfg.Upstreams[req.Upstream]; !ok {
		return nil, &inputError{status: http.StatusNotFound, code: messages.CodeUnknownTarget, field: "upstream",
			message: fmt.Sprintf("upstream %q is not configured (configured: %s)", req.Upstream, strings.Join(upstreamNames(cfg), ", "))}
	}
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	if !slices.Contains(taskMethods, method) {
		return nil, badInput("invalid_field", "method", "method must be one of %s; got %q", strings.Join(taskMethods, ", "), req.Method)
	}
	if ierr := checkPath(req.Path, "path"); ierr != nil {
		return nil, ierr
	}
	header, ierr := taskHeaders(req.Headers)
	if ierr != nil {
		return nil, ierr
	}
	body, isJSON, ierr := taskBody(req.Body)
	if ierr != nil {
		return nil, ierr
	}
	if isJSON && header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/json")
	}
	priority := st.priority
	if len(req.Priority) > 0 && string(req.Priority) != "null" {
		p, ierr := bodyPriority(req.Priority, cfg)
		if ierr != nil {
			return nil, ierr
		}
		priority = p
	}
	cache := st.cache
	if req.Cache != "" {
		if !validCacheMode(req.Cache) {
			return nil, badInput("invalid_field", "cache", `cache must be "auto", "bypass", "refresh" or "no-store"; got %q`, req.Cache)
		}
		cache = req.Cache
	}
	var timeout time.Duration
	if req.Timeout != nil {
		limit := cfg.ParallelExecution.WorkerTimeout
		if t := *req.Timeout; !(t > 0 && t <= limit) {
			return nil, badInput("invalid_field", "timeout", "timeout must be > 0 and <= %g seconds (parallel_execution.worker_timeout); got %g", limit, t)
		}
		timeout = conf.Seconds(*req.Timeout)
	}
	if req.Async && req.Stream {
		return nil, badInput("invalid_field", "stream", "stream cannot be combined with async: a stream is read as it arrives, not kept for later")
	}
	if len(header) == 0 {
		header = nil
	}
	return &messages.Task{
		ID: taskid.New(), Upstream: req.Upstream, Method: method, Path: req.Path, Header: header, Body: body,
		Priority: priority, Cache: cache, Timeout: timeout, Stream: req.Stream, IdempotencyKey: st.idemKey,
		CacheTTL: st.cacheTTL, CacheNamespace: st.namespace, Tenant: st.tenant,
	}, nil
}

// checkPath accepts a path (with an optional query) relative to an
// upstream's base URL: no scheme or host, no ".." segment, nothing a
// request line cannot carry. The query may hold URLs (crawler APIs take
// them as parameters).
func checkPath(p, field string) *inputError {
	pathPart, _, _ := strings.Cut(p, "?")
	switch {
	case p == "":
		return badInput("missing_field", field, "%s is required, e.g. \"/v1/chat/completions\"", field)
	case !strings.HasPrefix(p, "/"):
		return badInput("invalid_field", field, "%s must start with \"/\" (it is appended to the upstream's base_url); got %q", field, p)
	case strings.Contains(pathPart, "://") || strings.HasPrefix(p, "//"):
		return badInput("invalid_field", field, "%s must be a path, not a URL: only configured upstreams can be called", field)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '#' {
			return badInput("invalid_field", field, "%s has a character a request path cannot carry (%q at %d)", field, c, i)
		}
	}
	u, err := url.Parse(p)
	if err != nil {
		return badInput("invalid_field", field, "%s is not a valid path: %v", field, err)
	}
	if strings.Contains(u.Path, "://") {
		return badInput("invalid_field", field, "%s must be a path, not a URL: only configured upstreams can be called", field)
	}
	if hasDotDot(u.Path) {
		return badInput("invalid_field", field, "%s must not contain \"..\" segments", field)
	}
	return nil
}

// hasDotDot reports a ".." segment in a decoded path.
func hasDotDot(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

// taskHeaders checks the caller's headers: valid names, no CR/LF/NUL that
// would let a value start another header, none deer owns.
func taskHeaders(in map[string]string) (http.Header, *inputError) {
	h := make(http.Header, len(in))
	for _, name := range sortedKeys(in) {
		value := in[name]
		field := "headers." + name
		if !validHeaderName(name) {
			return nil, badInput("invalid_header", field, "header name %q is not a valid HTTP token", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, badInput("header_injection", field, "header injection: the value of %s contains CR, LF or NUL", name)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return nil, badInput("invalid_header", field, "the value of %s has a control character (%q)", name, c)
			}
		}
		canon := http.CanonicalHeaderKey(name)
		if deerOwnedHeaders[canon] {
			return nil, badInput("forbidden_header", field, "header %s is set by deer and may not be given (the credential comes from the upstream's api_key_env)", canon)
		}
		if strings.HasPrefix(canon, "X-Deer-") {
			return nil, badInput("forbidden_header", field, "header %s is deer's own: use the task's fields (priority, cache) instead", canon)
		}
		h.Add(canon, value)
	}
	return h, nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// taskBody turns the body field into bytes: a JSON string is sent as the
// raw string, any other JSON value as it came (isJSON). The request's
// decoder has checked that it is well-formed; its bytes are relayed, not
// re-encoded.
func taskBody(raw json.RawMessage) (body []byte, isJSON bool, ierr *inputError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, badInput("invalid_field", "body", "body is not a valid JSON string: %v", err)
		}
		return []byte(s), false, nil
	}
	return raw, true, nil
}

// bodyPriority reads the priority field: an integer level or a name.
func bodyPriority(raw json.RawMessage, cfg *conf.Config) (int, *inputError) {
	levels := cfg.ParallelExecution.PriorityLevels
	var name string
	if json.Unmarshal(raw, &name) == nil {
		if p, ok := parsePriorityName(name, cfg); ok {
			return p, nil
		}
		return 0, badInput("invalid_field", "priority", `priority must be "high", "normal", "low" or a level 0..%d; got %q`, levels-1, name)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, badInput("invalid_type", "priority", "priority must be an integer level or a name, not %s", raw)
	}
	if f != math.Trunc(f) || f < 0 || f >= float64(levels) {
		return 0, badInput("invalid_field", "priority", "priority must be an integer level 0..%d (parallel_execution.priority_levels = %d); got %s", levels-1, levels, raw)
	}
	return int(f), nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := askContext(r)
	defer cancel()
	// Only the credential that submitted the task finds it: to any other
	// caller it is unknown (404, as for an id that never existed).
	rep, err := s.rt.TaskStatus(ctx, id, tenantOf(r.Header))
	if err != nil {
		s.askError(w, r, err)
		return
	}
	if !rep.Found {
		writeError(w, http.StatusNotFound, "unknown_task", fmt.Sprintf("no task %q (unknown, or finished more than 10 minutes ago)", id), "id")
		return
	}
	w.Header().Set(headerTaskID, id)
	if rep.Result == nil {
		writeJSON(w, http.StatusOK, taskView{ID: id, Status: rep.State})
		return
	}
	setTaskHeaders(w, rep.Result)
	writeJSON(w, http.StatusOK, resultView(rep.Result))
}

func (s *Server) deleteTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := askContext(r)
	defer cancel()
	rep, err := s.rt.CancelTask(ctx, id, tenantOf(r.Header))
	if err != nil {
		s.askError(w, r, err)
		return
	}
	switch {
	case rep.Found:
		w.Header().Set(headerTaskID, id)
		writeJSON(w, http.StatusOK, taskView{ID: id, Status: "cancelled"})
	case rep.Unreachable:
		// A cluster node's task running on another node that did not get
		// the cancel: it runs on; the caller may try again.
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "node_unreachable",
			fmt.Sprintf("task %q is %s on node %s, which did not receive the cancel", id, rep.State, rep.Node), "id")
	case rep.State != "":
		writeError(w, http.StatusConflict, "task_finished", fmt.Sprintf("task %q has already finished (%s)", id, rep.State), "id")
	default:
		writeError(w, http.StatusNotFound, "unknown_task", fmt.Sprintf("no task %q (unknown, or finished more than 10 minutes ago)", id), "id")
	}
}

// askError answers a question the router did not answer in time.
func (s *Server) askError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the task router did not answer in time", "")
		return
	}
	s.runtimeError(w, r, err, writeError)
}

// taskView is a task in the /v1/tasks answers; the result fields are
// present once it has finished.
type taskView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	*finishedView
}

type finishedView struct {
	UpstreamStatus int               `json:"upstream_status"`
	Headers        map[string]string `json:"headers"`
	// Body is the upstream body as JSON when it parses as JSON, else a
	// string; bytes that are not UTF-8 are base64 with BodyEncoding set.
	Body         any                 `json:"body"`
	BodyEncoding string              `json:"body_encoding,omitempty"`
	Cache        string              `json:"cache"`
	Attempts     int                 `json:"attempts"`
	QueueMS      float64             `json:"queue_ms"`
	LatencyMS    float64             `json:"latency_ms"`
	Error        *messages.TaskError `json:"error,omitempty"`
}

func resultView(res *messages.TaskResult) taskView {
	body := res.Body
	if res.Stream != nil {
		// Only a streamed task carries a stream; read it whole if one
		// arrives here anyway, so its connection is released.
		b, _ := io.ReadAll(res.Stream)
		_ = res.Stream.Close()
		body = b
	}
	v := &finishedView{
		UpstreamStatus: res.UpstreamStatus,
		Headers:        flatHeaders(res.Header),
		Cache:          res.Cache,
		Attempts:       res.Attempts,
		QueueMS:        ms(res.Queue),
		LatencyMS:      ms(res.Latency),
		Error:          res.Err,
	}
	switch {
	case len(body) > 0 && json.Valid(body):
		v.Body = json.RawMessage(body)
	case utf8.Valid(body):
		v.Body = string(body)
	default:
		v.Body, v.BodyEncoding = body, "base64" // encoding/json writes []byte as base64
	}
	return taskView{ID: res.ID, Status: res.Status, finishedView: v}
}

// flatHeaders gives the upstream's end-to-end headers one string each,
// repeated ones joined with ", ".
func flatHeaders(h map[string][]string) map[string]string {
	out := make(map[string]string, len(h))
	drop := hopByHop(h)
	for k, vs := range h {
		if drop[http.CanonicalHeaderKey(k)] {
			continue
		}
		out[http.CanonicalHeaderKey(k)] = strings.Join(vs, ", ")
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func upstreamNames(cfg *conf.Config) []string { return sortedKeys(cfg.Upstreams) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
