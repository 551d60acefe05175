package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/internal/jsonscan"
	"github.com/deer-runtime/deer/internal/taskid"
	"github.com/deer-runtime/deer/messages"
)

// modelsCreated is the "created" time /v1/models reports: when this process
// started (the models are configuration, they have no creation date).
var modelsCreated = time.Now().Unix()

// openAIError is OpenAI's error shape, which the SDKs parse.
type openAIError struct {
	Error openAIErrorDetail `json:"error"`
}

type openAIErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// writeOpenAIError is the errWriter of the OpenAI-compatible routes; field
// becomes "param" (null when empty).
func writeOpenAIError(w http.ResponseWriter, status int, code, message, field string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	writeOpenAIErrorTo(w, status, code, message, field)
}

// jsonTaskHeader and streamTaskHeader are the request headers of an
// OpenAI-compatible task, shared by all of them (a map per request was three
// allocations): read-only, as every task's Header is once submitted.
var (
	jsonTaskHeader   = http.Header{"Content-Type": {"application/json"}}
	streamTaskHeader = http.Header{"Content-Type": {"application/json"}, "Accept": {"text/event-stream"}}
)

// openAI forwards an OpenAI-compatible POST to path on the upstream the
// body's model picks. The body is passed on byte for byte, except for the
// "model" value when an "UPSTREAM/" prefix has to be stripped.
func (s *Server) openAI(path string, streamable bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.refuseDraining(w, writeOpenAIError) {
			return
		}
		cfg := s.rt.Config()
		body, steer, ok := readInput(w, r, cfg, writeOpenAIError)
		if !ok {
			return
		}
		model, stream, ierr := peekOpenAI(body)
		if ierr != nil {
			ierr.write(w, writeOpenAIError)
			return
		}
		upstream, upstreamModel, ok := s.rt.ResolveModel(r.Context(), model)
		if !ok {
			writeModelNotFound(w, model)
			return
		}
		if upstreamModel != model {
			if body, ierr = replaceModel(body, upstreamModel); ierr != nil {
				ierr.write(w, writeOpenAIError)
				return
			}
		}
		stream = stream && streamable
		header := jsonTaskHeader
		if stream {
			header = streamTaskHeader
		}
		task := &messages.Task{
			ID: taskid.New(), Upstream: upstream, Method: http.MethodPost, Path: path, Header: header, Body: body,
			Priority: steer.priority, Cache: steer.cache, Stream: stream, IdempotencyKey: steer.idemKey,
			CacheTTL: steer.cacheTTL, CacheNamespace: steer.namespace, Tenant: steer.tenant,
		}
		res, ok := s.submit(w, r, task, writeOpenAIError)
		if !ok {
			return
		}
		s.relay(w, r, res, writeOpenAIError)
	}
}

// peekOpenAI reads the two fields deer needs from a request body that must
// be a JSON object: "model" (a non-empty string) and "stream" (a boolean,
// false when absent or null).
func peekOpenAI(body []byte) (model string, stream bool, ierr *inputError) {
	var modelRaw, streamRaw []byte
	err := jsonscan.Members(body, func(key, value []byte) {
		switch string(key) {
		case "model":
			modelRaw = value
		case "stream":
			streamRaw = value
		}
	})
	if err != nil {
		return "", false, badInput("invalid_json", "", "We could not parse the JSON body of your request: %v", err)
	}
	if modelRaw == nil || string(modelRaw) == "null" {
		return "", false, badInput("missing_required_parameter", "model", "you must provide a model parameter")
	}
	model, ok := jsonscan.PlainString(modelRaw)
	if !ok {
		// Escaped: decoded into a variable of its own, so that the common
		// case's result does not move to the heap for this one's pointer.
		var m string
		if json.Unmarshal(modelRaw, &m) != nil {
			return "", false, badInput("invalid_type", "model", "model must be a string, not %s", modelRaw)
		}
		model = m
	}
	if model == "" {
		return "", false, badInput("missing_required_parameter", "model", "you must provide a model parameter")
	}
	switch string(streamRaw) {
	case "", "null", "false":
	case "true":
		stream = true
	default:
		var b bool
		if json.Unmarshal(streamRaw, &b) != nil {
			return "", false, badInput("invalid_type", "stream", "stream must be a boolean, not %s", streamRaw)
		}
		stream = b
	}
	return model, stream, nil
}

// replaceModel returns body with the value of every top-level "model"
// member replaced by model, every other byte left as it was.
func replaceModel(body []byte, model string) ([]byte, *inputError) {
	value, _ := json.Marshal(model)
	var out []byte
	last := 0
	err := jsonscan.Walk(body, func(key []byte, start, end int) {
		if string(key) != "model" {
			return
		}
		out = append(out, body[last:start]...)
		out = append(out, value...)
		last = end
	})
	if err != nil {
		return nil, badInput("invalid_json", "", "We could not parse the JSON body of your request: %v", err)
	}
	return append(out, body[last:]...), nil
}

// writeModelNotFound answers 404 model_not_found as OpenAI does, word for
// word: the SDKs (and code written against them) match on it.
func writeModelNotFound(w http.ResponseWriter, model string) {
	writeOpenAIError(w, http.StatusNotFound, "model_not_found",
		fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model), "model")
}

// model is one entry of GET /v1/models.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// openAIModel is m in OpenAI's shape; owned_by is the upstream that serves
// it, created the upstream's own or, for a configured model it does not
// list, when deerd started.
func openAIModel(m deer.Model) model {
	created := m.Created
	if created <= 0 {
		created = modelsCreated
	}
	return model{ID: m.ID, Object: "model", Created: created, OwnedBy: m.Upstream}
}

// listModels lists every model deer can route to (see deer.Runtime.Models).
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	models := s.rt.Models(r.Context())
	data := make([]model, len(models))
	for i, m := range models {
		data[i] = openAIModel(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// getModel answers one model (ids may contain "/"), consistently with the
// list and with routing.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("model")
	m, ok := s.rt.Model(r.Context(), id)
	if !ok {
		writeModelNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, openAIModel(m))
}
