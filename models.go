package deer

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deer-runtime/deer/internal/catalog"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/messages"
)

// Model is one model deer can route to (GET /v1/models): its ID as clients
// name it, the upstream that serves it and the name that upstream knows it by.
type Model = catalog.Model

// Discovery timings; the listings' cache times are catalog.TTL (5 min) and
// catalog.FailureTTL (30 s).
const (
	// discoveryWait bounds how long a request waits for the model lists it
	// needs (an unknown model, a first GET /v1/models). The fetch goes on
	// after it, and its answer serves the next request.
	discoveryWait = 2 * time.Second
	// discoveryTimeout is one fetch's end, retries included.
	discoveryTimeout = 20 * time.Second
)

// ResolveModel picks the upstream for an OpenAI-style model name, in the
// order of SPEC §4 (see package catalog): "NAME/model" → upstream NAME with
// "model"; else the upstream whose configured models list it; else one whose
// own GET /v1/models lists it; else default_upstream. ok is false when none
// matches. A name that only the discovered lists could place may wait (up to
// 2 s, or ctx) for a list not fetched yet or out of date.
func (rt *Runtime) ResolveModel(ctx context.Context, model string) (upstream, upstreamModel string, ok bool) {
	cfg := rt.live.Load()
	if r, ok := rt.models.catalog().Resolve(cfg.Upstreams, "", model); ok {
		return r.Upstream, r.Model, true
	}
	rt.models.refresh(ctx, true)
	r, ok := rt.models.catalog().Resolve(cfg.Upstreams, cfg.DefaultUpstream, model)
	return r.Upstream, r.Model, ok
}

// Models lists every model deer can route to: the configured models and
// those the upstreams list themselves, each under an id that routes back to
// its upstream (bare when it does, else "UPSTREAM/model"). A list not
// fetched yet is waited for (up to 2 s, or ctx); an out-of-date one is used
// while it is fetched again.
func (rt *Runtime) Models(ctx context.Context) []Model {
	rt.models.refresh(ctx, false)
	return rt.models.catalog().List(rt.live.Load().Upstreams)
}

// Model is the model id names, when id routes to a model its upstream is
// known to serve: any id Models lists, and "UPSTREAM/model" for each. Names
// that would reach an upstream only as default_upstream are not models.
func (rt *Runtime) Model(ctx context.Context, id string) (Model, bool) {
	ups := rt.live.Load().Upstreams
	if m, ok := rt.models.catalog().Find(ups, id); ok {
		return m, true
	}
	rt.models.refresh(ctx, true)
	return rt.models.catalog().Find(ups, id)
}

// discovery keeps the model catalog: it fetches each upstream's own
// GET /v1/models as a task (so the pool, limiter, breaker and retries apply
// as to any call), one fetch per upstream at a time, when a request needs a
// list that is missing or out of date. Nothing runs in the background
// between requests.
//
// Concurrency: cat is read without locks (a Catalog never changes); it is
// replaced, and running changed, only under mu. Fetches run on their own
// goroutines, which stop (cancelling their tasks) before the runtime does.
type discovery struct {
	rt      *Runtime
	cat     atomic.Pointer[catalog.Catalog]
	mu      sync.Mutex
	running map[string]chan struct{} // upstream → closed once its fetch is recorded
	closed  bool                     // no new fetch once stopping
	ctx     context.Context          // ends when the runtime stops
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newDiscovery(rt *Runtime) *discovery {
	d := &discovery{rt: rt, running: make(map[string]chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.cat.Store(catalog.Empty())
	return d
}

func (d *discovery) catalog() *catalog.Catalog { return d.cat.Load() }

// refresh starts a fetch for every upstream whose list is due, and waits
// (up to discoveryWait, or ctx) for those with nothing listed yet — and with
// waitStale for the out-of-date ones too.
func (d *discovery) refresh(ctx context.Context, waitStale bool) {
	cfg := d.rt.live.Load()
	now := d.rt.clock.Now()
	var wait []chan struct{}
	for _, name := range sortedKeys(cfg.Upstreams) {
		if keyUnset(cfg.Upstreams[name].APIKeyEnv) {
			continue // it answers 503 without a call: nothing to ask
		}
		need := d.catalog().Need(name, now)
		if need == catalog.Fresh {
			continue
		}
		ch := d.start(name, now)
		if need == catalog.Missing || waitStale {
			wait = append(wait, ch)
		}
	}
	if len(wait) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryWait)
	defer cancel()
	for _, ch := range wait {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// start fetches upstream name's list unless a fetch is running (then it
// returns that one's channel) or the list became fresh meanwhile.
func (d *discovery) start(name string, now time.Time) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch, ok := d.running[name]; ok {
		return ch
	}
	ch := make(chan struct{})
	if d.closed || d.catalog().Need(name, now) == catalog.Fresh {
		close(ch)
		return ch
	}
	d.running[name] = ch
	d.wg.Add(1)
	go d.fetch(name, ch)
	return ch
}

func (d *discovery) fetch(name string, done chan struct{}) {
	defer d.wg.Done()
	models, err := d.list(name)
	outcome := "ok"
	if err != nil {
		outcome = "failed"
		d.rt.log.Info().Str("upstream", name).Err(err).Msg("listing the upstream's models failed; retried in 30 s")
	} else {
		d.rt.log.Debug().Str("upstream", name).Int("models", len(models)).Msg("listed the upstream's models")
	}
	d.rt.set.GetOrCreateCounter("deer_model_list_fetches_total" + metricname.Labels("upstream", name, "outcome", outcome)).Inc()
	d.mu.Lock()
	d.cat.Store(d.catalog().Record(name, d.rt.clock.Now(), models, err))
	delete(d.running, name)
	d.mu.Unlock()
	close(done)
}

// list asks upstream name for GET /v1/models through the task path. An
// upstream without that endpoint (404, 405) lists nothing.
func (d *discovery) list(name string) ([]catalog.Listed, error) {
	res, err := d.rt.Submit(d.ctx, &messages.Task{
		Upstream: name, Method: http.MethodGet, Path: "/v1/models",
		Header:   map[string][]string{"Accept": {"application/json"}},
		Priority: d.rt.live.Load().ParallelExecution.PriorityLevels / 2, // normal
		Cache:    messages.CacheBypass,                                  // the catalog is the cache
		Timeout:  discoveryTimeout,
	})
	switch {
	case err != nil:
		return nil, err
	case res.Err != nil:
		return nil, res.Err
	case res.UpstreamStatus == http.StatusNotFound || res.UpstreamStatus == http.StatusMethodNotAllowed:
		return nil, nil
	case res.UpstreamStatus/100 != 2:
		return nil, fmt.Errorf("GET /v1/models answered %d", res.UpstreamStatus)
	}
	return catalog.ParseList(res.Body)
}

// stop ends the running fetches (their tasks are cancelled) and waits for
// them; no fetch starts after.
func (d *discovery) stop() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}

// keyUnset: the upstream names a key variable that is not set, so deer
// would call it without its credential.
func keyUnset(env string) bool { return env != "" && os.Getenv(env) == "" }
