package deer_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
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
