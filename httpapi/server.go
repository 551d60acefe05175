package httpapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi/dashboard"
)

// maxConfigBody bounds POST /config bodies; a configuration patch is small.
const maxConfigBody = 64 << 10

// Server is deerd's HTTP handler.
type Server struct {
	rt       *deer.Runtime
	log      zerolog.Logger
	counters *Counters
	draining atomic.Bool
	mux      *http.ServeMux
}

// New builds the handler over rt. counters may be shared with the `http`
// actor (see ActorProps).
func New(rt *deer.Runtime, counters *Counters, log zerolog.Logger) *Server {
	if counters == nil {
		counters = &Counters{}
	}
	s := &Server{rt: rt, log: log.With().Str("actor", "http").Logger(), counters: counters, mux: http.NewServeMux()}
	s.route("/health", map[string]http.HandlerFunc{http.MethodGet: s.health})
	s.route("/health/live", map[string]http.HandlerFunc{http.MethodGet: s.live})
	s.route("/health/ready", map[string]http.HandlerFunc{http.MethodGet: s.ready})
	s.route("/metrics", map[string]http.HandlerFunc{http.MethodGet: s.metrics})
	s.route("/metrics/prometheus", map[string]http.HandlerFunc{http.MethodGet: s.prometheus})
	s.route("/metrics/history", map[string]http.HandlerFunc{http.MethodGet: s.history})
	s.route("/dashboard", map[string]http.HandlerFunc{http.MethodGet: dashboard.Serve})
	s.route("/dashboard/", map[string]http.HandlerFunc{http.MethodGet: s.dashboardSlash})
	s.route("/config", map[string]http.HandlerFunc{http.MethodGet: s.getConfig, http.MethodPost: s.admin(s.postConfig)})
	s.route("/config/reset", map[string]http.HandlerFunc{http.MethodPost: s.admin(s.resetConfig)})
	// Fault injection (SPEC §9): only while enabled, and for admins.
	s.mux.HandleFunc("/faults", s.faultsEnabled(methods("/faults", map[string]http.HandlerFunc{
		http.MethodPost: s.admin(s.postFault), http.MethodGet: s.admin(s.getFaults), http.MethodDelete: s.admin(s.clearFaults),
	})))
	s.mux.HandleFunc("/faults/{id}", s.faultsEnabled(methods("/faults/{id}", map[string]http.HandlerFunc{
		http.MethodDelete: s.admin(s.deleteFault),
	})))
	// The task path (SPEC §4 "Work").
	s.route("/v1/tasks", map[string]http.HandlerFunc{http.MethodPost: s.postTask})
	s.route("/v1/tasks/{id}", map[string]http.HandlerFunc{http.MethodGet: s.getTask, http.MethodDelete: s.deleteTask})
	s.route("/v1/chat/completions", map[string]http.HandlerFunc{http.MethodPost: s.openAI("/v1/chat/completions", true)})
	s.route("/v1/embeddings", map[string]http.HandlerFunc{http.MethodPost: s.openAI("/v1/embeddings", false)})
	s.route("/v1/models", map[string]http.HandlerFunc{http.MethodGet: s.listModels})
	s.route("/v1/models/{model...}", map[string]http.HandlerFunc{http.MethodGet: s.getModel})
	s.mux.HandleFunc("/proxy", s.proxyWithoutUpstream)
	s.mux.HandleFunc("/proxy/{$}", s.proxyWithoutUpstream)
	s.mux.HandleFunc("/proxy/{upstream}", s.proxy)
	s.mux.HandleFunc("/proxy/{upstream}/{path...}", s.proxy)
	s.mux.HandleFunc("/debug/pprof/", s.debugOnly(pprof.Index))
	s.mux.HandleFunc("/debug/pprof/cmdline", s.debugOnly(pprof.Cmdline))
	s.mux.HandleFunc("/debug/pprof/profile", s.debugOnly(pprof.Profile))
	s.mux.HandleFunc("/debug/pprof/symbol", s.debugOnly(pprof.Symbol))
	s.mux.HandleFunc("/debug/pprof/trace", s.debugOnly(pprof.Trace))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no endpoint "+r.Method+" "+r.URL.Path, "")
	})
	return s
}

// SetDraining makes the server refuse new work while shutting down.
func (s *Server) SetDraining(v bool) { s.draining.Store(v) }

// Draining reports whether the server is shutting down.
func (s *Server) Draining() bool { return s.draining.Load() }

// ServeHTTP counts the request and dispatches it. A panic in a handler is
// answered with 500 instead of tearing down the connection silently.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.counters.Requests.Add(1)
	s.counters.InFlight.Add(1)
	defer s.counters.InFlight.Add(-1)
	rec := recorders.Get().(*statusRecorder)
	rec.ResponseWriter, rec.status = w, 0
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // rec is not recycled: net/http may still hold it
			}
			s.log.Error().Interface("panic", p).Str("path", r.URL.Path).Msg("handler panicked")
			if rec.status == 0 {
				writeError(rec, http.StatusInternalServerError, "internal_error", "internal error", "")
			}
		}
		if rec.status >= 400 && rec.status < 500 {
			s.counters.Rejected.Add(1)
		}
		// The handlers are done with it: none keeps its ResponseWriter
		// past its return.
		rec.ResponseWriter = nil
		recorders.Put(rec)
	}()
	s.mux.ServeHTTP(rec, r)
}

// recorders recycles the statusRecorder of every request (one allocation
// per request otherwise); a recorder lives exactly as long as ServeHTTP.
var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// route registers a path whose methods are listed; other methods get a JSON
// 405 naming the allowed ones.
func (s *Server) route(path string, byMethod map[string]http.HandlerFunc) {
	s.mux.HandleFunc(path, methods(path, byMethod))
}

// methods dispatches on the request's method (see route).
func methods(path string, byMethod map[string]http.HandlerFunc) http.HandlerFunc {
	allowed := make([]string, 0, len(byMethod))
	for m := range byMethod {
		allowed = append(allowed, m)
	}
	allow := strings.Join(allowed, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		h, ok := byMethod[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = byMethod[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+path+"; use "+allow, "")
			return
		}
		h(w, r)
	}
}

// askContext bounds how long one admin request may spend asking actors.
func askContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 2*time.Second)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := askContext(r)
	defer cancel()
	rep := s.rt.Health(ctx)
	if s.draining.Load() && rep.Status == "healthy" {
		rep.Status = "degraded"
	}
	status := http.StatusOK
	if rep.Status == "unhealthy" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}

func (s *Server) live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "alive", "timestamp": unixNow()})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := askContext(r)
	defer cancel()
	ok, why := s.rt.Ready(ctx)
	if s.draining.Load() {
		ok, why = false, "shutting down"
	}
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "reason": why, "timestamp": unixNow()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "timestamp": unixNow()})
}

func (s *Server) metricsDisabled(w http.ResponseWriter) bool {
	if s.rt.Config().Monitoring.MetricsEnabled {
		return false
	}
	writeError(w, http.StatusNotFound, "metrics_disabled", "metrics are disabled (monitoring.metrics_enabled = false)", "monitoring.metrics_enabled")
	return true
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.metricsDisabled(w) {
		return
	}
	if prefersPrometheus(r.Header.Get("Accept")) {
		s.writePrometheus(w)
		return
	}
	ctx, cancel := askContext(r)
	defer cancel()
	writeJSON(w, http.StatusOK, s.rt.Metrics(ctx))
}

func (s *Server) prometheus(w http.ResponseWriter, _ *http.Request) {
	if s.metricsDisabled(w) {
		return
	}
	s.writePrometheus(w)
}

func (s *Server) writePrometheus(w http.ResponseWriter) {
	var buf bytes.Buffer
	s.rt.MetricsSet().WritePrometheus(&buf)
	vm.WriteProcessMetrics(&buf)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	if s.metricsDisabled(w) {
		return
	}
	snaps, err := s.rt.History(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "metrics_unavailable", err.Error(), "")
		return
	}
	cfg := s.rt.Config().Monitoring
	writeJSON(w, http.StatusOK, map[string]any{
		"timestamp":         unixNow(),
		"export_interval":   cfg.ExportInterval,
		"metrics_retention": cfg.MetricsRetention,
		"snapshots":         snaps,
	})
}

// dashboardSlash serves the page at /dashboard/ too; anything below it is
// not found (the page has no other asset).
func (s *Server) dashboardSlash(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/dashboard/" {
		writeError(w, http.StatusNotFound, "not_found", "no endpoint "+r.Method+" "+r.URL.Path, "")
		return
	}
	dashboard.Serve(w, r)
}

func (s *Server) getConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"timestamp": unixNow(), "configuration": s.rt.Config().Redacted()})
}

func (s *Server) postConfig(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, maxConfigBody)
	if !ok {
		return
	}
	next, err := s.rt.UpdateConfig(r.Context(), body)
	if err != nil && next == nil {
		writeConfigError(w, err)
		return
	}
	msg := "configuration updated and applied"
	if err != nil {
		msg = "configuration updated; " + err.Error()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "success", "message": msg, "timestamp": unixNow(), "updated_configuration": next.Redacted(),
	})
}

func (s *Server) resetConfig(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if to != "" && to != "builtin" && to != "startup" {
		writeError(w, http.StatusBadRequest, "invalid_parameter", `to must be "builtin" or "startup", got "`+to+`"`, "to")
		return
	}
	next, err := s.rt.ResetConfig(r.Context(), to == "builtin")
	if err != nil && next == nil {
		writeConfigError(w, err)
		return
	}
	msg := "configuration reset to the startup configuration"
	if to == "builtin" {
		msg = "configuration reset to the built-in defaults (listen address, admin token, L3 path and upstreams kept)"
	}
	if err != nil {
		msg += "; " + err.Error()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "success", "message": msg, "timestamp": unixNow(), "default_configuration": next.Redacted(),
	})
}

func writeConfigError(w http.ResponseWriter, err error) {
	var fe conf.FieldErrors
	if errors.As(err, &fe) {
		writeError(w, http.StatusBadRequest, "invalid_config", fe.Error(), fe[0].Key)
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_config", err.Error(), "")
}

// readBody reads at most limit bytes; a larger body is answered with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is over the limit of "+formatBytes(limit), "")
		} else {
			writeError(w, http.StatusBadRequest, "bad_body", "reading request body: "+err.Error(), "")
		}
		return nil, false
	}
	return body, true
}

// admin guards the endpoints that change deerd (SPEC §4): with an admin
// token set they need it as a Bearer token; without one they are open only
// while deerd listens on loopback.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		srv := s.rt.Config().Server
		if srv.AdminToken == "" {
			if !isLoopback(srv.Addr) {
				writeError(w, http.StatusForbidden, "admin_token_required",
					"deerd listens on "+srv.Addr+" (not loopback) without server.admin_token; set DEER_ADMIN_TOKEN to use this endpoint", "server.admin_token")
				return
			}
			h(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		token, found := strings.CutPrefix(auth, "Bearer ")
		if !found || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="deerd"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs Authorization: Bearer <admin token>", "")
			return
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(srv.AdminToken)) != 1 {
			writeError(w, http.StatusForbidden, "forbidden", "the admin token is not valid", "")
			return
		}
		h(w, r)
	}
}

// debugOnly serves h only while debug_mode is on.
func (s *Server) debugOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.rt.Config().DebugMode {
			writeError(w, http.StatusNotFound, "not_found", "/debug/pprof is served only in debug_mode", "debug_mode")
			return
		}
		h(w, r)
	}
}

// isLoopback reports whether a listen address only accepts local clients.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func unixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }
