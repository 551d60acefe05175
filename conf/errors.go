package conf

import (
	"strings"
)

// FieldError is one configuration problem. Loading, validation and Patch
// all report problems as FieldErrors so that deerd --check-config can list
// them and the HTTP API can put Key in its error's "field".
type FieldError struct {
	// Key is the dotted key at fault ("rate_limit.min_rate"), or "" when
	// the problem is not about one key (a malformed body, a missing file).
	Key string
	// Env is the DEER_* variable that set Key, when one did; the operator
	// has to fix the environment, not the file.
	Env string
	// Reason is the complete message, naming the key and its value:
	// `rate_limit.min_rate (5) must be <= rate_limit.max_rate (2)`.
	Reason string

	// other is the second key of a cross-field rule, so that Patch can
	// report the key the client actually sent.
	other string
}

func (e FieldError) Error() string {
	if e.Env == "" || strings.Contains(e.Reason, e.Env) {
		return e.Reason
	}
	return e.Reason + " (from " + e.Env + ")"
}

// FieldErrors is the list of every problem found; it is never returned
// empty. Use errors.As to get at it:
//
//	var fe conf.FieldErrors
//	if errors.As(err, &fe) { field := fe[0].Key }
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// orNil keeps a nil FieldErrors from becoming a non-nil error interface.
func (es FieldErrors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
