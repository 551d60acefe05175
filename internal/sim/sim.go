package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/internal/clock"
)

// maxBodyBytes bounds a request body; 2048 embedding inputs of a few KiB
// each fit.
const maxBodyBytes = 32 << 20

// Simulator is the simulated upstream, an http.Handler. Its methods are safe
// for concurrent use.
type Simulator struct {
	clock  clock.Clock
	log    zerolog.Logger
	models []string
	stats  *counters
	waits  *waits
	idSalt uint64
	ids    atomic.Uint64

	mu     sync.Mutex // guards knobs, rng and bucket
	knobs  Knobs
	rng    *rand.Rand
	bucket bucket

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: waits end, hangs drop
}

var _ http.Handler = (*Simulator)(nil)

// Option configures a Simulator.
type Option func(*Simulator)

// WithSeed makes the fault draws (and chat completion ids) repeatable: the
// same seed and the same sequence of requests give the same outcomes.
// Without it the seed is random.
func WithSeed(seed int64) Option {
	return func(s *Simulator) { s.rng = rand.New(rand.NewPCG(uint64(seed), 0x5eed)) }
}

// WithClock sets the clock of the capacity bucket and of the waits (latency,
// stream intervals); the default is the wall clock.
func WithClock(c clock.Clock) Option { return func(s *Simulator) { s.clock = c } }

// WithLogger sets the logger for knob changes and server errors; the
// default discards.
func WithLogger(l zerolog.Logger) Option { return func(s *Simulator) { s.log = l } }

// WithModels sets the model ids listed by GET /v1/models (default
// "sim-model" and "sim-embed"). Requests for other models are answered too.
func WithModels(ids ...string) Option {
	return func(s *Simulator) { s.models = slices.Clone(ids) }
}

// New returns a simulator with knobs k. It panics if k is invalid: check
// k.Validate first when k comes from a user.
func New(k Knobs, opts ...Option) *Simulator {
	if err := k.Validate(); err != nil {
		panic(fmt.Sprintf("sim.New: invalid knobs: %v", err))
	}
	s := &Simulator{
		clock:  clock.Real{},
		log:    zerolog.Nop(),
		models: []string{"sim-model", "sim-embed"},
		knobs:  k,
		closed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	s.idSalt = s.rng.Uint64()
	now := s.clock.Now()
	s.stats = newCounters(now)
	s.waits = newWaits()
	s.bucket.reset(k.Capacity, now)
	return s
}

// Knobs returns the current knobs.
func (s *Simulator) Knobs() Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

// SetKnobs replaces the knobs, or returns the Validate error and changes
// nothing. A new capacity starts with a full bucket.
func (s *Simulator) SetKnobs(k Knobs) error {
	if err := k.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	if k.Capacity != s.knobs.Capacity {
		s.bucket.reset(k.Capacity, s.clock.Now())
	}
	s.knobs = k
	s.mu.Unlock()
	s.log.Info().RawJSON("knobs", mustJSON(k)).Msg("simulator knobs set")
	return nil
}

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	st := s.stats.snapshot()
	st.RetryAfter = s.waits.snapshot()
	st.Now = s.clock.Now()
	return st
}

// ResetStats zeroes the counters and forgets the 429s awaiting a retry.
func (s *Simulator) ResetStats() {
	s.stats.reset(s.clock.Now())
	s.waits.reset()
}

// Close releases hung requests (their connections are dropped) and makes
// latency and stream intervals end at once, now and later, so that a server
// shutting down is not held up by simulated waits. The shutdown of a server
// made by Server calls it. It does not close listeners; it is idempotent.
func (s *Simulator) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// endpoint is one API path: its methods and handler, which gets the body
// already read.
type endpoint struct {
	methods []string
	handle  func(s *Simulator, w http.ResponseWriter, r *http.Request, body []byte)
}

var endpoints = map[string]endpoint{
	"/v1/chat/completions": {[]string{http.MethodPost}, (*Simulator).chat},
	"/v1/embeddings":       {[]string{http.MethodPost}, (*Simulator).embeddings},
	"/v1/models":           {[]string{http.MethodGet}, (*Simulator).listModels},
	"/search":              {[]string{http.MethodGet, http.MethodPost}, (*Simulator).search},
}

// ServeHTTP routes: the control paths, else an API path through the fault
// steps (see the package doc).
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_control":
		s.serveControl(w, r)
		return
	case "/_stats":
		if !allowMethod(w, r, http.MethodGet) {
			return
		}
		writeJSON(w, http.StatusOK, s.Stats())
		return
	case "/_stats/reset":
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		s.ResetStats()
		writeJSON(w, http.StatusOK, s.Stats())
		return
	}

	ep, known := endpoints[r.URL.Path]
	key := r.URL.Path
	if !known {
		key = "other" // bounded: arbitrary paths must not grow the map
	}
	s.stats.begin(key)
	defer s.stats.done()
	s.serveAPI(&recorder{ResponseWriter: w, stats: s.stats}, r, ep, known)
}

func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request, ep endpoint, known bool) {
	if !known {
		writeError(w, http.StatusNotFound, typeInvalidRequest, "", "unknown_url",
			fmt.Sprintf("Unknown request URL: %s %s.", r.Method, r.URL.Path))
		return
	}
	if !allowMethod(w, r, ep.methods...) {
		return
	}
	// Read the whole body first: net/http notices a client hanging up (and
	// cancels r.Context()) only once the body has been consumed, and a hung
	// request must end when its client gives up.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, typeInvalidRequest, "", "request_too_large",
				fmt.Sprintf("Request body exceeds %d bytes.", mbe.Limit))
		}
		return // otherwise the client is gone
	}
	ov, err := parseOverrides(r.Header)
	if err != nil {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, knobKey(err), "invalid_override", err.Error())
		return
	}
	s.waits.arrived(body, s.clock.Now())
	if s.inject(w, r, ov, body) {
		ep.handle(s, w, r, body)
	}
}

// inject runs the fault steps in the documented order and reports whether
// the request goes on to be answered.
func (s *Simulator) inject(w http.ResponseWriter, r *http.Request, ov overrides, body []byte) bool {
	s.mu.Lock()
	k := s.knobs
	hang, reset := ov.fault == "hang", ov.fault == "reset"
	if ov.fault == "" {
		hang = s.roll(k.HangRate)
		reset = !hang && s.roll(k.ResetRate)
	}
	admitted, failed := true, false
	if !hang && !reset && ov.status == 0 {
		admitted = s.bucket.allow(s.clock.Now())
		failed = admitted && s.roll(k.ErrorRate)
	}
	s.mu.Unlock()

	switch {
	case hang:
		s.stats.hang()
		s.hang(r.Context())
	case reset:
		s.stats.connReset()
		resetConn(w)
	case !admitted:
		s.waits.asked(body, s.clock.Now(), time.Duration(k.RetryAfter)*time.Second)
		writeRateLimited(w, k.RetryAfter,
			fmt.Sprintf("Rate limit reached: the simulator admits %g requests per second.", k.Capacity))
	case failed:
		writeError(w, http.StatusInternalServerError, typeServerError, "", "",
			"The server had an error while processing your request. Sorry about that! (simulated)")
	default:
		latency := k.Latency
		if ov.hasLatency {
			latency = ov.latency
		}
		if s.wait(r.Context(), latency) != nil {
			return false // the client gave up; nobody is left to answer
		}
		if ov.status == 0 || ov.status < 300 {
			return true
		}
		if ov.status == http.StatusTooManyRequests {
			s.waits.asked(body, s.clock.Now(), time.Duration(k.RetryAfter)*time.Second)
		}
		writeForced(w, ov.status, k.RetryAfter)
	}
	return false
}

// roll draws whether an event of probability p happens; 0 and 1 draw
// nothing, so they leave the seeded sequence of the other knobs alone.
// Callers hold s.mu.
func (s *Simulator) roll(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return s.rng.Float64() < p
}

// wait sleeps d on the simulator's clock. It returns early with ctx's error
// when the client goes away, and with nil once the simulator is closed.
func (s *Simulator) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	fired := make(chan struct{})
	t := s.clock.AfterFunc(d, func() { close(fired) })
	defer t.Stop()
	select {
	case <-fired:
		return nil
	case <-s.closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hang blocks until the client gives up or the simulator closes, then drops
// the connection without an answer.
func (s *Simulator) hang(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.closed:
	}
	panic(http.ErrAbortHandler) // net/http closes the connection and logs nothing
}

// resetConn closes the connection with SO_LINGER 0, which sends a TCP RST:
// the client sees "connection reset by peer". Where the connection cannot be
// hijacked (HTTP/2) the response is aborted instead.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if l, ok := conn.(interface{ SetLinger(sec int) error }); ok {
		_ = l.SetLinger(0)
	}
	_ = conn.Close()
}

// overrides are the per-request X-Sim-* headers.
type overrides struct {
	fault      string // "", "hang", "reset" or "none"
	status     int    // 0 = not forced
	latency    time.Duration
	hasLatency bool
}

func parseOverrides(h http.Header) (overrides, error) {
	var ov overrides
	if v := h.Get("X-Sim-Fault"); v != "" {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case "hang", "reset", "none":
			ov.fault = v
		default:
			return ov, &KnobError{Key: "X-Sim-Fault", Reason: fmt.Sprintf("must be hang, reset or none, got %q", v)}
		}
	}
	if v := h.Get("X-Sim-Status"); v != "" {
		code, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || code < 200 || code > 599 {
			return ov, &KnobError{Key: "X-Sim-Status", Reason: fmt.Sprintf("must be an HTTP status 200..599, got %q", v)}
		}
		ov.status = code
	}
	if v := h.Get("X-Sim-Latency"); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return ov, &KnobError{Key: "X-Sim-Latency", Reason: fmt.Sprintf("must be a duration >= 0 such as \"50ms\", got %q", v)}
		}
		ov.latency, ov.hasLatency = d, true
	}
	return ov, nil
}

// serveControl answers GET and POST /_control.
func (s *Simulator) serveControl(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, s.Knobs())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "", "invalid_body", "cannot read body: "+err.Error())
		return
	}
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "", "invalid_body",
			`body must be a JSON object of knobs, e.g. {"latency": "300ms", "error_rate": 0.1}`)
		return
	}
	// Decode onto the current knobs under the lock, so that two concurrent
	// partial updates do not undo each other.
	s.mu.Lock()
	k := s.knobs
	err = k.UnmarshalJSON(body)
	if err == nil && k.Capacity != s.knobs.Capacity {
		s.bucket.reset(k.Capacity, s.clock.Now())
	}
	if err == nil {
		s.knobs = k
	}
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, knobKey(err), "invalid_knob",
			strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	s.log.Info().RawJSON("knobs", mustJSON(k)).Msg("simulator knobs changed through /_control")
	writeJSON(w, http.StatusOK, k)
}

// knobKey is the key of the first *KnobError in err, or "".
func knobKey(err error) string {
	if ke := (*KnobError)(nil); errors.As(err, &ke) {
		return ke.Key
	}
	return ""
}

// allowMethod answers 405 unless r uses one of methods.
func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, typeInvalidRequest, "", "method_not_allowed",
		fmt.Sprintf("Method %s is not allowed on %s; use %s.", r.Method, r.URL.Path, strings.Join(methods, " or ")))
	return false
}

// recorder counts the status of the answer as it is written, before the
// client can see it. Unwrap lets http.ResponseController reach Flush and
// Hijack underneath.
type recorder struct {
	http.ResponseWriter
	stats *counters
	wrote bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.wrote = true
		r.stats.status(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain types get here
	}
	return b
}
