package chaos

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Against a real deerd whose /faults is a fake, the drill runs every phase,
// drives every kind of request to success, injects and removes each phase's
// faults through the contract, and accounts for every request.
func TestDrillAgainstFakeFaults(t *testing.T) {
	p := tinyPlan()
	var fake *fakeFaults
	st := startStack(t, p, func(h http.Handler) http.Handler { fake = newFakeFaults(h); return fake })
	res, err := Run(context.Background(), st.options(p))
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Total
	if tot.Sent != res.Sent || tot.Sent < 100 || tot.Lost != 0 || tot.Duplicates != 0 {
		t.Fatalf("sent %d (open loop %d), lost %d (%v), duplicates %d %v", tot.Sent, res.Sent, tot.Lost, tot.LostWhy, tot.Duplicates, res.Duplicates)
	}
	for _, k := range Kinds {
		if kc := tot.ByKind[k]; kc.Succeeded == 0 {
			t.Errorf("no %s request succeeded: %+v; failures %v", k, kc, tot.Failed)
		}
	}
	// No actor fault really happened: what was sent before the upstream
	// faults succeeded, but for a batch of embeddings sent late in the
	// recovery phase and flushed into the 5xx burst.
	for _, ph := range res.Phases {
		if UpstreamAffected(ph.Kind) {
			continue
		}
		for why, n := range ph.Counts.Failed {
			if why != "502 upstream_error" || ph.Kind != PhaseRecovery || n > 10 {
				t.Errorf("%s: %d × %s, with no actor fault", ph.Name, n, why)
			}
		}
	}
	if tot.CacheHits == 0 {
		t.Error("the repeated temperature-0 chats never hit the cache")
	}
	// The burst lasts 240 ms: on a loaded machine (CI runs every package's
	// tests at once, with the race detector) every call sent in it may reach
	// deersim only after the burst is reset. So 500s are required when deerd
	// made calls within the burst; the knob itself must always be set.
	if res.UpstreamCalls <= 0 {
		t.Errorf("no upstream calls in the whole drill")
	}
	for _, ph := range res.Phases {
		if ph.Name != "upstream 5xx burst" {
			continue
		}
		if ph.Error != "" {
			t.Errorf("%s: setting deersim's knobs: %s", ph.Name, ph.Error)
		}
		if n := st.sim.Stats().Statuses[500]; ph.UpstreamCalls > 0 && n == 0 {
			t.Errorf("%s: %d upstream calls in the burst, deersim answered no 500: the burst did not reach deersim", ph.Name, ph.UpstreamCalls)
		} else {
			t.Logf("%s: %d upstream calls, deersim 500s %d", ph.Name, ph.UpstreamCalls, n)
		}
	}

	fake.mu.Lock()
	posted, deleted, left := len(fake.posted), len(fake.deleted), len(fake.faults)
	fake.mu.Unlock()
	actorPhases := 0
	for _, ph := range res.Phases {
		if !ph.actor() {
			continue
		}
		actorPhases++
		if len(ph.Faults) != 1 || ph.Faults[0].ID == "" || ph.Faults[0].Error != "" || ph.Faults[0].Fired != ph.Faults[0].Spec.Count {
			t.Errorf("%s: faults %+v", ph.Name, ph.Faults)
		}
		if ph.Kind == PhasePanic && ph.Restarts[strings.ReplaceAll(ph.Faults[0].Spec.Actor, "*", "0")] != ph.Faults[0].Spec.Count {
			t.Errorf("%s: restarts %v, the fake restarted its actor %d times", ph.Name, ph.Restarts, ph.Faults[0].Spec.Count)
		}
		if ph.HealthyAfterMS < 0 || ph.RemovedS <= ph.ActualStartS {
			t.Errorf("%s: removed at %.2f s (started %.2f s), healthy after %v ms", ph.Name, ph.RemovedS, ph.ActualStartS, ph.HealthyAfterMS)
		}
		if ph.PeakRSS <= 0 {
			t.Errorf("%s: no peak RSS", ph.Name)
		}
	}
	if posted != actorPhases || deleted != actorPhases || left != 0 {
		t.Errorf("the fake saw %d faults posted and %d deleted for %d actor phases; %d left", posted, deleted, actorPhases, left)
	}
	if res.HealthyAfterMS < 0 || sum(res.Restarts) != 3*len(PanicTargets) || res.Escalations != actorPhases/10 {
		t.Errorf("healthy after %v ms, restarts %v, escalations %d", res.HealthyAfterMS, res.Restarts, res.Escalations)
	}
	if len(res.Samples) < 10 || len(res.Timeline.Sent) < 10 {
		t.Errorf("%d samples, %d buckets", len(res.Samples), len(res.Timeline.Sent))
	}
	md := res.Markdown("chaos/timeline.svg")
	for _, ph := range res.Phases {
		if !strings.Contains(md, "| "+ph.Name+" |") {
			t.Errorf("the report has no row for %s", ph.Name)
		}
	}
	if err := xml.Unmarshal([]byte(res.TimelineSVG()), new(struct{})); err != nil {
		t.Error(err)
	}
}

// A gateway that never answers one request and gives another the answer
// of an earlier one: the drill must count one lost, one wrong answer and
// one duplicate, and fail.
func TestDrillCatchesALyingGateway(t *testing.T) {
	p := tinyPlan()
	p.Duration = 2e9
	var mu sync.Mutex
	var chats int
	var first []byte
	st := startStack(t, p, func(h http.Handler) http.Handler {
		fake := newFakeFaults(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/chat/completions" {
				fake.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			plain := !strings.Contains(string(body), `"stream"`) && !strings.Contains(string(body), `"temperature"`)
			mu.Lock()
			if plain {
				chats++
			}
			n, replay := chats, first
			mu.Unlock()
			switch {
			case plain && n == 3: // never answered
				<-r.Context().Done()
				return
			case plain && n == 6 && replay != nil: // someone else's answer
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(replay)
				return
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			rec := &recorder{ResponseWriter: w}
			fake.ServeHTTP(rec, r)
			mu.Lock()
			if plain && first == nil && rec.status == 200 {
				first = rec.body
			}
			mu.Unlock()
		})
	})
	res, err := Run(context.Background(), st.options(p))
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Total
	if tot.Lost != 1 || tot.LostWhy["unanswered"] != 1 || tot.Failed["wrong_answer"] != 1 || tot.Duplicates != 1 || !res.Failed() {
		t.Fatalf("lost %d %v, failed %v, duplicates %d %v; want 1 lost, 1 wrong answer, 1 duplicate", tot.Lost, tot.LostWhy, tot.Failed, tot.Duplicates, res.Duplicates)
	}
	if g := res.Goals(); g[0].Met != "missed" || g[1].Met != "missed" {
		t.Errorf("goals %+v", g[:2])
	}
}

type recorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	r.body = append(r.body, b...)
	return r.ResponseWriter.Write(b)
}

func TestRunRefusesADeerdWithoutFaults(t *testing.T) {
	p := tinyPlan()
	st := startStack(t, p, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/faults") {
				http.NotFound(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	if _, err := Run(context.Background(), st.options(p)); !errors.Is(err, ErrNoFaultAPI) {
		t.Fatalf("err %v, want ErrNoFaultAPI", err)
	}
}
