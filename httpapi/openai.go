package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/deer-runtime/deer/actors/router"
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
	writeJSON(w, status, openAIError{Error: d})
}

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
		upstream, upstreamModel, ok := s.rt.ResolveModel(model)
		if !ok {
			writeOpenAIError(w, http.StatusNotFound, "model_not_found",
				fmt.Sprintf("The model %q is not served here: no upstream lists it and no default_upstream is set. GET /v1/models lists the models.", model), "model")
			return
		}
		if upstreamModel != model {
			if body, ierr = replaceModel(body, upstreamModel); ierr != nil {
				ierr.write(w, writeOpenAIError)
				return
			}
		}
		stream = stream && streamable
		header := http.Header{"Content-Type": {"application/json"}}
		if stream {
			header.Set("Accept", "text/event-stream")
		}
		task := &messages.Task{
			ID: router.NewTaskID(), Upstream: upstream, Method: http.MethodPost, Path: path, Header: header, Body: body,
			Priority: steer.priority, Cache: steer.cache, Stream: stream, IdempotencyKey: steer.idemKey,
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
	err := topLevel(body, func(key, value []byte) {
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
	model, ok := plainString(modelRaw)
	if !ok && json.Unmarshal(modelRaw, &model) != nil {
		return "", false, badInput("invalid_type", "model", "model must be a string, not %s", modelRaw)
	}
	if model == "" {
		return "", false, badInput("missing_required_parameter", "model", "you must provide a model parameter")
	}
	switch string(streamRaw) {
	case "", "null", "false":
	case "true":
		stream = true
	default:
		if json.Unmarshal(streamRaw, &stream) != nil {
			return "", false, badInput("invalid_type", "stream", "stream must be a boolean, not %s", streamRaw)
		}
	}
	return model, stream, nil
}

// plainString decodes a JSON string value that needs no unescaping (no
// backslash, valid UTF-8) without the reflection of json.Unmarshal; ok is
// false for anything else, which the caller decodes the slow way.
func plainString(v []byte) (s string, ok bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

var errNotObject = errors.New("the body must be a JSON object")

// topLevel walks the members of the JSON object in data and calls fn with
// each key (unescaped) and the exact bytes of its value (a subslice of
// data). It checks that data is one well-formed object and decodes nothing
// else.
func topLevel(data []byte, fn func(key, value []byte)) error {
	return walkTopLevel(data, func(key []byte, start, end int) { fn(key, data[start:end]) })
}

// walkTopLevel calls fn with each top-level member's key and the offsets of
// its value. A valid body (checked by json.Valid, which allocates nothing)
// is walked by a plain byte scan; an invalid one goes through decodeTopLevel
// for the decoder's error message. The scan replaced a json.Decoder that
// copied the body and every value: on the chat path it was a tenth of the
// bytes allocated per request.
func walkTopLevel(data []byte, fn func(key []byte, start, end int)) error {
	if !json.Valid(data) {
		return decodeTopLevel(data, fn)
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return errNotObject
	}
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		kstart := i
		i = skipString(data, i)
		key := data[kstart+1 : i-1]
		if _, plain := plainString(data[kstart:i]); !plain {
			var k string
			_ = json.Unmarshal(data[kstart:i], &k) // valid JSON: cannot fail
			key = []byte(k)
		}
		i = skipSpace(data, skipSpace(data, i)+1) // past the colon
		start := i
		i = skipValue(data, i)
		fn(key, start, i)
		i = skipSpace(data, i)
	}
	return nil
}

// The skip functions move over one token of JSON already known to be
// valid, returning the offset just past it.

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

func skipString(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++ // the escaped byte; \uXXXX's digits need no care
		}
	}
	return i + 1
}

func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	// A number, true, false or null: up to the next delimiter.
	for ; i < len(data); i++ {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// decodeTopLevel is walkTopLevel with a json.Decoder, for bodies that are
// not valid JSON: its error says what is wrong and where.
func decodeTopLevel(data []byte, fn func(key []byte, start, end int)) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errNotObject
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
		// The decoder stops right after the value, and RawMessage holds its
		// bytes verbatim: the value is the len(value) bytes before the offset.
		end := int(dec.InputOffset())
		fn([]byte(key), end-len(value), end)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}

// replaceModel returns body with the value of every top-level "model"
// member replaced by model, every other byte left as it was.
func replaceModel(body []byte, model string) ([]byte, *inputError) {
	value, _ := json.Marshal(model)
	var out []byte
	last := 0
	err := walkTopLevel(body, func(key []byte, start, end int) {
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

// model is one entry of GET /v1/models.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models lists every upstream's configured models: each by its bare name
// (resolved through the upstreams' models lists) and then each as
// "UPSTREAM/model", the form that always names its upstream explicitly.
func (s *Server) models() []model {
	cfg := s.rt.Config()
	var bare, prefixed []model
	for _, name := range upstreamNames(cfg) {
		for _, m := range cfg.Upstreams[name].Models {
			bare = append(bare, model{ID: m, Object: "model", Created: modelsCreated, OwnedBy: name})
			prefixed = append(prefixed, model{ID: name + "/" + m, Object: "model", Created: modelsCreated, OwnedBy: name})
		}
	}
	return append(append([]model{}, bare...), prefixed...)
}

func (s *Server) listModels(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": s.models()})
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("model")
	for _, m := range s.models() {
		if m.ID == id {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	writeOpenAIError(w, http.StatusNotFound, "model_not_found", fmt.Sprintf("The model %q is not listed by any upstream.", id), "model")
}
