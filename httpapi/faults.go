package httpapi

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/deer-runtime/deer"
)

// The fault-injection endpoints (SPEC §9): HTTP onto Runtime.InjectFault,
// Faults, RemoveFault and ClearFaults.

// faultRequest is the body of POST /faults.
type faultRequest struct {
	Actor   string `json:"actor"`
	Kind    string `json:"kind"`
	Count   int    `json:"count"`
	DelayMS int64  `json:"delay_ms"`
	Message string `json:"message"`
}

const faultFields = "actor, kind, count, delay_ms, message"

// faultView is one fault as /faults shows it.
type faultView struct {
	ID      string `json:"id"`
	Actor   string `json:"actor"`
	Kind    string `json:"kind"`
	Count   int    `json:"count"`
	DelayMS int64  `json:"delay_ms"`
	Message string `json:"message"`
	Fired   int    `json:"fired"`
	Active  bool   `json:"active"`
}

func viewFault(f deer.FaultStatus) faultView {
	return faultView{ID: f.ID, Actor: f.Actor, Kind: f.Kind, Count: f.Count, DelayMS: f.Delay.Milliseconds(),
		Message: f.Message, Fired: f.Fired, Active: f.Active}
}

// faultsEnabled serves h only while the live configuration enables fault
// injection; otherwise the routes do not exist (404), whatever the method.
func (s *Server) faultsEnabled(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if cfg := s.rt.Config(); !cfg.DebugMode && !cfg.Server.FaultInjection {
			writeError(w, http.StatusNotFound, "not_found",
				"/faults is served only with debug_mode or server.fault_injection on", "server.fault_injection")
			return
		}
		h(w, r)
	}
}

func (s *Server) postFault(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, maxConfigBody)
	if !ok {
		return
	}
	var req faultRequest
	if ierr := decodeStrict(body, &req, faultFields); ierr != nil {
		ierr.write(w, writeError)
		return
	}
	// Bounded so that the conversion cannot wrap: anything this large is
	// refused as over the limit anyway.
	delay := time.Duration(min(req.DelayMS, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
	id, err := s.rt.InjectFault(r.Context(), deer.Fault{Actor: req.Actor, Kind: req.Kind, Count: req.Count, Delay: delay, Message: req.Message})
	var fe *deer.FaultError
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, "invalid_field", fe.Error(), fe.Field)
		return
	case errors.Is(err, deer.ErrFaultInjectionOff):
		// Switched on by POST /config after start: the actors run without
		// the hook until deerd restarts with the setting.
		writeError(w, http.StatusConflict, "restart_required",
			"fault injection was switched on after deerd started; the fault hook is installed at start: restart deerd with server.fault_injection (or DEER_FAULT_INJECTION=true) or debug_mode", "server.fault_injection")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error(), "")
		return
	}
	view := faultView{ID: id, Actor: req.Actor, Kind: req.Kind, Count: req.Count, DelayMS: req.DelayMS, Message: req.Message, Active: true}
	for _, f := range s.rt.Faults().Faults {
		if f.ID == id {
			view = viewFault(f)
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "fault": view})
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request) {
	rep := s.rt.Faults()
	views := make([]faultView, 0, len(rep.Faults))
	for _, f := range rep.Faults {
		views = append(views, viewFault(f))
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": views, "restarts": rep.Restarts, "escalations": rep.Escalations})
}

func (s *Server) deleteFault(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.rt.RemoveFault(id) {
		writeError(w, http.StatusNotFound, "unknown_fault", "no fault "+id, "id")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": true})
}

func (s *Server) clearFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"removed": s.rt.ClearFaults()})
}
