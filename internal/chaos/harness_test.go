package chaos

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/httpapi"
	"github.com/deer-runtime/deer/internal/sim"
)

// stack is a deersim and a deerd in this process: deer.Start with the
// http actor, httpapi on httptest, as deerd builds them.
type stack struct {
	sim      *sim.Simulator
	simURL   string
	deerdURL string
	config   string
}

// startStack serves deersim and a deerd configured by DeerdConfig (with
// fault injection on) for the test's lifetime; wrap, if set, wraps deerd's
// handler.
func startStack(t *testing.T, p Plan, wrap func(http.Handler) http.Handler) *stack {
	t.Helper()
	s := sim.New(sim.DefaultKnobs())
	simSrv := httptest.NewServer(s)
	t.Cleanup(simSrv.Close)
	t.Cleanup(s.Close) // runs first: hung requests end, so simSrv.Close returns

	dir := t.TempDir()
	text := DeerdConfig("127.0.0.1:0", simSrv.URL, filepath.Join(dir, "l3"), p)
	path := filepath.Join(dir, "deerd.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DEER_FAULT_INJECTION": "true"}
	cfg, err := conf.Load(conf.LoadOptions{ConfigPath: path, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	counters := &httpapi.Counters{}
	rt, err := deer.Start(context.Background(), cfg, deer.WithLogger(log, nil),
		deer.WithActor("http", httpapi.ActorProps(cfg.Server.Addr, counters, func() bool { return false }, log)))
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = httpapi.New(rt, counters, log)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Errorf("stopping deerd: %v", err)
		}
	})
	return &stack{sim: s, simURL: simSrv.URL, deerdURL: srv.URL, config: text}
}

func (s *stack) options(p Plan) Options {
	return Options{Plan: p, Deerd: s.deerdURL, Sim: s.simURL, PID: os.Getpid()}
}

// tinyPlan runs every phase in a few seconds: the wiring, not the numbers.
func tinyPlan() Plan {
	p := QuickPlan()
	p.Rate, p.Duration = 40, 4*time.Second
	p.ErrorRate = 1 // every call of the 5xx phase fails: the test can see it did
	p.WorkerTimeout, p.Grace = time.Second, 2500*time.Millisecond
	p.Sample, p.Bucket = 100*time.Millisecond, 250*time.Millisecond
	return p
}

// fakeFaults serves the /faults contract (POST, GET, DELETE one, DELETE
// all) in front of a deerd that has none: what a panic would do is faked
// as a restart of the named actor, and every fault fires its count at once.
type fakeFaults struct {
	next http.Handler

	mu       sync.Mutex
	seq      int
	faults   map[string]*FaultState
	posted   []FaultSpec
	deleted  []string
	restarts map[string]int
}

func newFakeFaults(next http.Handler) *fakeFaults {
	return &fakeFaults{next: next, faults: map[string]*FaultState{}, restarts: map[string]int{}}
}

var faultKinds = map[string]bool{"panic": true, "delay": true, "drop": true}

func (f *fakeFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/faults" && !strings.HasPrefix(r.URL.Path, "/faults/") {
		f.next.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	write := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/faults":
		var spec FaultSpec
		if err := json.NewDecoder(r.Body).Decode(&spec); err != nil || spec.Actor == "" {
			write(400, map[string]any{"error": map[string]string{"code": "invalid_field", "field": "actor"}})
			return
		}
		if !faultKinds[spec.Kind] {
			write(400, map[string]any{"error": map[string]string{"code": "invalid_field", "field": "kind"}})
			return
		}
		f.seq++
		id := strconv.Itoa(f.seq)
		st := &FaultState{ID: FaultID(id), Actor: spec.Actor, Kind: spec.Kind, Count: spec.Count, DelayMS: spec.DelayMS, Fired: spec.Count}
		f.faults[id] = st
		f.posted = append(f.posted, spec)
		if spec.Kind == "panic" {
			f.restarts[strings.ReplaceAll(spec.Actor, "*", "0")] += spec.Count
		}
		write(http.StatusAccepted, map[string]any{"id": f.seq, "fault": st}) // a numeric id, as the contract allows
	case r.Method == http.MethodGet && r.URL.Path == "/faults":
		list := []FaultState{}
		for _, st := range f.faults {
			list = append(list, *st)
		}
		write(200, map[string]any{"faults": list, "restarts": f.restarts, "escalations": len(f.posted) / 10})
	case r.Method == http.MethodDelete && r.URL.Path == "/faults":
		f.faults = map[string]*FaultState{}
		write(200, map[string]any{"removed": true})
	case r.Method == http.MethodDelete:
		id := strings.TrimPrefix(r.URL.Path, "/faults/")
		if f.faults[id] == nil {
			write(404, map[string]any{"error": map[string]string{"code": "unknown_fault"}})
			return
		}
		delete(f.faults, id)
		f.deleted = append(f.deleted, id)
		write(200, map[string]any{"removed": id})
	default:
		write(405, nil)
	}
}
