package deer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

// ExampleStart runs the actor system and its supervision tree without HTTP,
// asks it how it is, and stops it.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "deer-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := conf.Default()
	cfg.Cache.L3Path = dir // the persistent cache tier lives here

	ctx := context.Background()
	rt, err := deer.Start(ctx, cfg)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	fmt.Println("status:", rt.Health(ctx).Status)
	fmt.Println("max_workers:", rt.Config().ParallelExecution.MaxWorkers)
	if err := rt.Stop(ctx); err != nil {
		fmt.Println("stop:", err)
	}
	// Output:
	// status: healthy
	// max_workers: 20
}

// ExampleRuntime_Submit sends one call through the task path to an upstream
// and waits for its result.
func ExampleRuntime_Submit() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"you_sent":%q}`, r.URL.Path)
	}))
	defer upstream.Close()
	dir, _ := os.MkdirTemp("", "deer-example-")
	defer os.RemoveAll(dir)

	cfg := conf.Default()
	cfg.Cache.L3Path = dir
	cfg.Monitoring.DetailedLogging = false
	cfg.Upstreams = map[string]conf.Upstream{"search": conf.NewUpstream(upstream.URL)}

	ctx := context.Background()
	rt, err := deer.Start(ctx, cfg, deer.WithLogger(zerolog.Nop(), nil))
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer rt.Stop(ctx)

	res, err := rt.Submit(ctx, &messages.Task{Upstream: "search", Method: "POST", Path: "/search",
		Body: []byte(`{"query":"deer"}`), Priority: 0})
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	fmt.Println(res.Status, res.UpstreamStatus, string(res.Body))
	// Output:
	// succeeded 200 {"you_sent":"/search"}
}

// ExampleRuntime_Router shows an actor submitting a task by message: it
// sends *messages.SubmitTask to the router and gets *messages.TaskResult.
func ExampleRuntime_Router() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer upstream.Close()
	dir, _ := os.MkdirTemp("", "deer-example-")
	defer os.RemoveAll(dir)
	cfg := conf.Default()
	cfg.Cache.L3Path = dir
	cfg.Monitoring.DetailedLogging = false
	cfg.Upstreams = map[string]conf.Upstream{"api": conf.NewUpstream(upstream.URL)}

	ctx := context.Background()
	rt, err := deer.Start(ctx, cfg, deer.WithLogger(zerolog.Nop(), nil))
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer rt.Stop(ctx)

	results := make(chan *messages.TaskResult, 1)
	agent := rt.System().Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case string: // "go": submit a task, answer to ourselves
			c.Request(rt.Router(), &messages.SubmitTask{Task: &messages.Task{Upstream: "api", Method: "GET", Path: "/status"}})
		case *messages.TaskResult:
			results <- m
		}
	}))
	rt.System().Root.Send(agent, "go")
	res := <-results
	fmt.Println(res.Status, string(res.Body))
	// Output:
	// succeeded {"ok":true}
}

// ExampleRuntime_InjectFault crashes cache/l2 on the next cache lookup, as
// a fault test in a user's suite would: supervision restarts it after a
// backoff and hands it the lookup again, and the task is answered as if
// nothing had happened.
func ExampleRuntime_InjectFault() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer upstream.Close()
	dir, _ := os.MkdirTemp("", "deer-example-")
	defer os.RemoveAll(dir)
	cfg := conf.Default()
	cfg.Cache.L3Path = dir
	cfg.Monitoring.DetailedLogging = false
	cfg.Upstreams = map[string]conf.Upstream{"api": conf.NewUpstream(upstream.URL)}

	ctx := context.Background()
	// The fault hook is installed at start (or with server.fault_injection).
	rt, err := deer.Start(ctx, cfg, deer.WithLogger(zerolog.Nop(), nil), deer.WithFaultInjection())
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer rt.Stop(ctx)

	id, err := rt.InjectFault(ctx, deer.Fault{Actor: "cache/l2", Kind: "panic", Count: 1, Message: "CacheLookup"})
	if err != nil {
		fmt.Println("inject:", err)
		return
	}
	// A GET is cacheable: the router looks it up in cache/l2 first.
	res, err := rt.Submit(ctx, &messages.Task{Upstream: "api", Method: "GET", Path: "/status"})
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	fmt.Println(res.Status, string(res.Body))
	rep := rt.Faults()
	fmt.Printf("%s fired %d, active %v; cache/l2 restarted %d time\n", id, rep.Faults[0].Fired, rep.Faults[0].Active, rep.Restarts["cache/l2"])
	// Output:
	// succeeded {"ok":true}
	// f1 fired 1, active false; cache/l2 restarted 1 time
}
