package httpapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/sim"
)

// A task is read and cancelled only with the credential that submitted it:
// to any other caller it answers 404 unknown_task, exactly as an id that
// never existed, whether it is running or finished.
func TestTaskIsOnlyVisibleToItsOwner(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	alice := []string{"Authorization", "Bearer alice"}
	resp, body := h.send(http.MethodPost, "/v1/tasks",
		`{"upstream": "sim", "path": "/search", "headers": {"X-Sim-Fault": "hang"}, "body": {"query": "mine"}, "async": true}`, alice...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, body)
	}
	id := decodeTask(t, body).ID
	actortest.Eventually(t, "the call to reach the upstream", func() bool { return s.Stats().InFlight == 1 })

	others := map[string][]string{
		"another bearer":          {"Authorization", "Bearer bob"},
		"no credential":           nil,
		"the token as x-api-key":  {"X-Api-Key", "Bearer alice"},
		"the bare token (bearer)": {"Authorization", "alice"},
	}
	check := func(when string) {
		t.Helper()
		for name, cred := range others {
			resp, body := h.send(http.MethodGet, "/v1/tasks/"+id, "", cred...)
			wantError(t, resp, body, http.StatusNotFound, "unknown_task", "id")
			resp, body = h.send(http.MethodDelete, "/v1/tasks/"+id, "", cred...)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s, DELETE with %s: %d %s, want 404", when, name, resp.StatusCode, body)
			}
		}
	}
	check("running")
	if _, body := h.send(http.MethodGet, "/v1/tasks/"+id, "", alice...); decodeTask(t, body).Status != "running" {
		t.Fatalf("another caller's DELETE touched the task: %s", body)
	}
	if resp, body := h.send(http.MethodDelete, "/v1/tasks/"+id, "", alice...); resp.StatusCode != http.StatusOK {
		t.Fatalf("the owner's DELETE = %d: %s", resp.StatusCode, body)
	}
	actortest.Eventually(t, "the cancelled result", func() bool {
		_, body = h.send(http.MethodGet, "/v1/tasks/"+id, "", alice...)
		return decodeTask(t, body).Status == "failed"
	})
	check("finished")
	resp, body = h.send(http.MethodDelete, "/v1/tasks/"+id, "", alice...)
	wantError(t, resp, body, http.StatusConflict, "task_finished", "id")
}

// An X-Api-Key is a credential like Authorization; a task submitted with
// none is readable only with none.
func TestTaskOwnerByAPIKeyOrNoCredential(t *testing.T) {
	_, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	for _, owner := range [][]string{{"X-Api-Key", "k1"}, nil} {
		resp, body := h.send(http.MethodPost, "/v1/tasks", `{"upstream": "sim", "path": "/search", "body": {"query": "q"}, "async": true}`, owner...)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, want 202: %s", resp.StatusCode, body)
		}
		id := decodeTask(t, body).ID
		if resp, body := h.send(http.MethodGet, "/v1/tasks/"+id, "", owner...); resp.StatusCode != http.StatusOK {
			t.Errorf("owner %v: GET = %d %s", owner, resp.StatusCode, body)
		}
		for _, other := range [][]string{{"X-Api-Key", "k2"}, {"Authorization", "k1"}, {"X-Api-Key", "k1", "Authorization", "Bearer x"}} {
			if slices.Equal(other, owner) {
				continue
			}
			resp, body := h.send(http.MethodGet, "/v1/tasks/"+id, "", other...)
			wantError(t, resp, body, http.StatusNotFound, "unknown_task", "id")
		}
		if owner != nil {
			resp, body := h.send(http.MethodGet, "/v1/tasks/"+id, "")
			wantError(t, resp, body, http.StatusNotFound, "unknown_task", "id")
		}
	}
}

// An Idempotency-Key repeated by another credential is another request: it
// is not answered with the first caller's result.
func TestIdempotencyKeyIsTheCallersOwn(t *testing.T) {
	s, url := simUpstream(t, sim.DefaultKnobs())
	h := start(t, simConfig(t, url))
	task := `{"upstream": "sim", "path": "/search", "body": {"query": "once"}, "cache": "bypass"}`
	_, body1 := h.send(http.MethodPost, "/v1/tasks", task, "Idempotency-Key", "order-42", "Authorization", "Bearer alice")
	_, body2 := h.send(http.MethodPost, "/v1/tasks", task, "Idempotency-Key", "order-42", "Authorization", "Bearer bob")
	_, body3 := h.send(http.MethodPost, "/v1/tasks", task, "Idempotency-Key", "order-42", "Authorization", "Bearer alice")
	d1, d2, d3 := decodeTask(t, body1), decodeTask(t, body2), decodeTask(t, body3)
	if d1.Status != "succeeded" || d2.Status != "succeeded" {
		t.Fatalf("results: %s / %s", body1, body2)
	}
	if d2.ID == d1.ID {
		t.Errorf("bob got alice's result (task %s)", d1.ID)
	}
	if d3.ID != d1.ID {
		t.Errorf("alice's repeat is task %s, want her first, %s", d3.ID, d1.ID)
	}
	if n := s.Stats().Requests["/search"]; n != 2 {
		t.Errorf("the upstream was called %d times, want 2 (alice once, bob once)", n)
	}
}
