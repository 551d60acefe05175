package sim

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/deer-runtime/deer/internal/actortest"
)

func TestHostServesUntilClosed(t *testing.T) {
	ctx := testCtx(t)
	h, err := Host("127.0.0.1:0", quiet(), WithModels("hosted-model"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(h.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the bound port", h.Addr())
	}
	url := "http://" + h.Addr()
	resp, body := do(t, newClient(t, false), "GET", url+"/v1/models", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"hosted-model"`) {
		t.Fatalf("GET /v1/models = %d %s", resp.StatusCode, body)
	}

	slow := make(chan int, 1)
	go func() {
		// An hour's latency: Close must cut it short.
		resp, err := send(ctx, newClient(t, false), "POST", url+chatPath, chatBody, "X-Sim-Latency", "1h")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	actortest.Eventually(t, "the request in flight", func() bool { return h.Simulator().Stats().InFlight == 1 })
	if err := h.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the request in its latency got %d at Close, want 200", code)
	}
	if c, err := net.Dial("tcp", h.Addr()); err == nil {
		c.Close()
		t.Error("the listener is still open after Close")
	}
}

func TestHostRefusesATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	h, err := Host(taken.Addr().String(), quiet())
	var inUse *AddrInUseError
	if h != nil || !errors.Is(err, ErrAddrInUse) || !errors.As(err, &inUse) || inUse.Addr != taken.Addr().String() {
		t.Fatalf("Host on a taken port = %v, %v; want an *AddrInUseError naming %s", h, err, taken.Addr())
	}
}
