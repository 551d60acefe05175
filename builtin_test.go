package deer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func builtinConfig(t *testing.T, addr string) *conf.Config {
	cfg := testConfig(t)
	cfg.ConnectionPool.InitialConnections = 0
	cfg.Upstreams = map[string]conf.Upstream{"sim": {BaseURL: "http://" + addr, Builtin: true, Cache: "auto", Timeout: 60,
		Models: []string{"sim-model"}}}
	cfg.DefaultUpstream = "sim"
	return cfg
}

func TestBuiltinUpstreamServesTheSimulator(t *testing.T) {
	addr := freeAddr(t)
	rt := start(t, builtinConfig(t, addr))
	res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "sim", Method: "POST", Path: "/v1/chat/completions",
		Body: []byte(`{"model":"sim-model","messages":[{"role":"user","content":"hello"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != messages.TaskSucceeded || res.UpstreamStatus != 200 || !strings.Contains(string(res.Body), `"chat.completion"`) {
		t.Fatalf("chat through the builtin simulator: %+v %s", res.Err, res.Body)
	}
}

func TestBuiltinPortTakenRefusesToStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = deer.Start(context.Background(), builtinConfig(t, ln.Addr().String()), quiet())
	if err == nil {
		t.Fatal("Start succeeded with the simulator's port taken")
	}
	if !errors.Is(err, sim.ErrAddrInUse) || !strings.Contains(err.Error(), "upstreams.sim.builtin") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q should name upstreams.sim.builtin and the address", err)
	}
}

// A builtin upstream on port 0 gets an ephemeral port, and the runtime's
// configuration carries it: the pool calls it, GET /config shows it, a
// POST /config that sends the upstreams back is not "upstreams changed",
// and POST /config/reset keeps it. Two runtimes on the same file both
// serve, which a fixed port would refuse.
func TestBuiltinPortZeroBindsAnEphemeralPort(t *testing.T) {
	var logs actortest.SyncBuffer
	cfg := builtinConfig(t, "127.0.0.1:0")
	rt := start(t, cfg, deer.WithLogger(zerolog.New(&logs), nil))
	other := start(t, builtinConfig(t, "127.0.0.1:0"))

	if got := cfg.Upstreams["sim"].BaseURL; got != "http://127.0.0.1:0" {
		t.Errorf("the caller's configuration was changed: base_url %q", got)
	}
	base := rt.Config().Upstreams["sim"].BaseURL
	u, err := url.Parse(base)
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
		t.Fatalf("running base_url %q, want 127.0.0.1 with the bound port", base)
	}
	if o := other.Config().Upstreams["sim"].BaseURL; o == base {
		t.Errorf("two runtimes share the simulator address %s", o)
	}
	if s := rt.StartupConfig().Upstreams["sim"].BaseURL; s != base {
		t.Errorf("startup configuration base_url %q, want %q", s, base)
	}
	if n := logs.Count(`"message":"serving the built-in simulator"`); n != 1 || !strings.Contains(logs.String(), `"addr":"`+u.Host+`"`) {
		t.Errorf("want one log line naming %s:\n%s", u.Host, logs.String())
	}
	for _, r := range []*deer.Runtime{rt, other} {
		res, err := r.Submit(context.Background(), &messages.Task{Upstream: "sim", Method: "POST", Path: "/v1/chat/completions",
			Body: []byte(`{"model":"sim-model","messages":[{"role":"user","content":"hello"}]}`)})
		if err != nil || res.Status != messages.TaskSucceeded || res.UpstreamStatus != 200 {
			t.Fatalf("chat through the ephemeral simulator: %v %+v", err, res)
		}
	}

	// What GET /config shows can be posted back.
	shown, err := json.Marshal(map[string]any{"upstreams": rt.Config().Redacted().Upstreams,
		"batch_processing": map[string]any{"batch_size": 15}})
	if err != nil {
		t.Fatal(err)
	}
	next, err := rt.UpdateConfig(context.Background(), shown)
	if err != nil {
		t.Fatalf("posting the upstreams back: %v", err)
	}
	if next.BatchProcessing.BatchSize != 15 || next.Upstreams["sim"].BaseURL != base {
		t.Errorf("after the patch: batch_size %d base_url %q", next.BatchProcessing.BatchSize, next.Upstreams["sim"].BaseURL)
	}
	for _, builtin := range []bool{false, true} {
		reset, err := rt.ResetConfig(context.Background(), builtin)
		if err != nil {
			t.Fatal(err)
		}
		if reset.Upstreams["sim"].BaseURL != base {
			t.Errorf("reset (builtin %v): base_url %q, want %q", builtin, reset.Upstreams["sim"].BaseURL, base)
		}
	}
}

// A fixed port is served where it says and the configuration is unchanged.
func TestBuiltinFixedPortKeepsItsBaseURL(t *testing.T) {
	addr := freeAddr(t)
	cfg := builtinConfig(t, addr)
	rt := start(t, cfg)
	if got := rt.Config(); got != cfg || got.Upstreams["sim"].BaseURL != "http://"+addr {
		t.Errorf("fixed port: running base_url %q (same config: %v)", got.Upstreams["sim"].BaseURL, got == cfg)
	}
}
