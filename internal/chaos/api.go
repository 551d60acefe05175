package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNoFaultAPI is returned by Run when deerd answers GET /faults with 404:
// fault injection is off (neither debug_mode nor server.fault_injection),
// or this deerd predates it.
var ErrNoFaultAPI = errors.New("deerd has no fault API: GET /faults answered 404 (start deerd with DEER_FAULT_INJECTION=true)")

// FaultID is the id POST /faults gives a fault, kept as text whether deerd
// writes it as a JSON string or number.
type FaultID string

// UnmarshalJSON accepts a string or a number.
func (id *FaultID) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*id = FaultID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("fault id %s: want a string or a number", b)
	}
	*id = FaultID(n.String())
	return nil
}

// FaultState is one fault as GET /faults lists it.
type FaultState struct {
	ID      FaultID `json:"id"`
	Actor   string  `json:"actor"`
	Kind    string  `json:"kind"`
	Count   int     `json:"count"`
	DelayMS int     `json:"delay_ms"`
	Message string  `json:"message"`
	Fired   int     `json:"fired"`
	Active  bool    `json:"active"`
}

// FaultsReport is the answer to GET /faults.
type FaultsReport struct {
	Faults      []FaultState   `json:"faults"`
	Restarts    map[string]int `json:"restarts"`
	Escalations int            `json:"escalations"`
}

// fired is how often fault id fired; ok is false when it is not listed.
func (r FaultsReport) fired(id FaultID) (int, bool) {
	for _, f := range r.Faults {
		if f.ID == id {
			return f.Fired, true
		}
	}
	return 0, false
}

// restartTotal sums the restarts of every actor.
func (r FaultsReport) restartTotal() int {
	n := 0
	for _, v := range r.Restarts {
		n += v
	}
	return n
}

// api talks to deerd's admin endpoints and deersim's control endpoints.
type api struct {
	deerd, sim string // base URLs
	token      string // deerd's admin token, if any
	client     *http.Client
}

// adminTimeout bounds one admin request: an actor held up by a delay fault
// must not hold the drill up.
const adminTimeout = 3 * time.Second

// call makes one request and returns the status and body; an error means
// no answer.
func (a *api) call(ctx context.Context, method, u, body string, admin bool) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if admin && a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// expect makes a request that must answer want.
func (a *api) expect(ctx context.Context, method, u, body string, admin bool, want int) ([]byte, error) {
	status, b, err := a.call(ctx, method, u, body, admin)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if status != want {
		return b, fmt.Errorf("%s %s: %d %s", method, u, status, bytes.TrimSpace(b))
	}
	return b, nil
}

// faults reads GET /faults.
func (a *api) faults(ctx context.Context) (FaultsReport, error) {
	var r FaultsReport
	status, b, err := a.call(ctx, http.MethodGet, a.deerd+"/faults", "", true)
	switch {
	case err != nil:
		return r, fmt.Errorf("GET /faults: %w", err)
	case status == http.StatusNotFound:
		return r, ErrNoFaultAPI
	case status != http.StatusOK:
		return r, fmt.Errorf("GET /faults: %d %s", status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("GET /faults: %w", err)
	}
	return r, nil
}

// inject posts a fault and returns its id.
func (a *api) inject(ctx context.Context, f FaultSpec) (FaultID, error) {
	body, _ := json.Marshal(f)
	b, err := a.expect(ctx, http.MethodPost, a.deerd+"/faults", string(body), true, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	var r struct {
		ID FaultID `json:"id"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		return "", fmt.Errorf("POST /faults: no id in %s", bytes.TrimSpace(b))
	}
	return r.ID, nil
}

// remove deletes fault id; one that is gone already (fired its count) is
// not an error.
func (a *api) remove(ctx context.Context, id FaultID) error {
	status, b, err := a.call(ctx, http.MethodDelete, a.deerd+"/faults/"+url.PathEscape(string(id)), "", true)
	if err != nil {
		return fmt.Errorf("DELETE /faults/%s: %w", id, err)
	}
	if status >= 300 && status != http.StatusNotFound {
		return fmt.Errorf("DELETE /faults/%s: %d %s", id, status, bytes.TrimSpace(b))
	}
	return nil
}

// removeAll deletes every fault.
func (a *api) removeAll(ctx context.Context) error {
	status, b, err := a.call(ctx, http.MethodDelete, a.deerd+"/faults", "", true)
	if err != nil {
		return fmt.Errorf("DELETE /faults: %w", err)
	}
	if status >= 300 {
		return fmt.Errorf("DELETE /faults: %d %s", status, bytes.TrimSpace(b))
	}
	return nil
}

// Health states of the timeline, from GET /health; NoAnswer when it did
// not answer in time.
const (
	Healthy   = "healthy"
	Degraded  = "degraded"
	Unhealthy = "unhealthy"
	NoAnswer  = "no answer"
)

// health reads GET /health: the overall status and how many actors are
// restarting.
func (a *api) health(ctx context.Context) (status string, restarting int) {
	code, b, err := a.call(ctx, http.MethodGet, a.deerd+"/health", "", false)
	if err != nil || (code != http.StatusOK && code != http.StatusServiceUnavailable) {
		return NoAnswer, 0
	}
	var h struct {
		Status string `json:"status"`
		Actors map[string]struct {
			State string `json:"state"`
		} `json:"actors"`
	}
	if json.Unmarshal(b, &h) != nil || h.Status == "" {
		return NoAnswer, 0
	}
	for _, s := range h.Actors {
		if s.State == "restarting" {
			restarting++
		}
	}
	return h.Status, restarting
}

// control changes deersim's knobs.
func (a *api) control(ctx context.Context, knobs string) error {
	_, err := a.expect(ctx, http.MethodPost, a.sim+"/_control", knobs, false, http.StatusOK)
	return err
}

// upstreamCalls is the number of API calls deersim has counted (every
// path but its own control and stats endpoints).
func (a *api) upstreamCalls(ctx context.Context) (int64, error) {
	b, err := a.expect(ctx, http.MethodGet, a.sim+"/_stats", "", false, http.StatusOK)
	if err != nil {
		return 0, err
	}
	var st struct {
		Requests map[string]int64 `json:"requests"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, fmt.Errorf("GET /_stats: %w", err)
	}
	var n int64
	for _, v := range st.Requests {
		n += v
	}
	return n, nil
}

// errorCode is the error code of an error body in SPEC §4's shape or
// OpenAI's ({"error": {"code": …}}), else its type, else "".
func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code json.RawMessage `json:"code"`
			Type string          `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var code string
	if json.Unmarshal(e.Error.Code, &code) == nil && code != "" {
		return code
	}
	if n, err := strconv.Atoi(string(e.Error.Code)); err == nil {
		return strconv.Itoa(n)
	}
	return e.Error.Type
}
