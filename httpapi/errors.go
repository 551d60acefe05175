package httpapi

import (
	"net/http"

	"github.com/deer-runtime/deer/internal/jsonout"
)

// errorBody is SPEC §4's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeJSON is every JSON answer deerd writes (jsonout: nothing is
// HTML-escaped, so "<redacted>" and ">=" read as they are).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = jsonout.Write(w, v)
}

func writeError(w http.ResponseWriter, status int, code, message, field string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message, Field: field}})
}
