package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Hosted is a simulator served inside another program on its own listener:
// deer serves one at the base_url of every upstream configured with
// builtin = true. Serve is for a program that is only the simulator.
type Hosted struct {
	sim    *Simulator
	srv    *http.Server
	addr   string
	served chan error
}

// Host serves a new simulator (New(k, opts...)) on addr and returns once it
// accepts connections. A taken port is an *AddrInUseError (errors.Is
// ErrAddrInUse); port 0 binds an ephemeral port, which Addr tells.
func Host(addr string, k Knobs, opts ...Option) (*Hosted, error) {
	ln, err := Listen(addr)
	if err != nil {
		return nil, err
	}
	s := New(k, opts...)
	h := &Hosted{sim: s, srv: s.Server(), addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { h.served <- h.srv.Serve(ln) }()
	return h, nil
}

// Addr is the address the simulator listens on (host:port).
func (h *Hosted) Addr() string { return h.addr }

// Simulator is the simulator being served: its knobs and stats.
func (h *Hosted) Simulator() *Simulator { return h.sim }

// Close stops serving. Hung simulated requests are dropped and latencies cut
// short at once (see Simulator.Close); answers in flight get until ctx ends
// to complete, then their connections are closed. It returns once the
// server has stopped, with ctx's error if it had to force that.
func (h *Hosted) Close(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		_ = h.srv.Close()
		err = fmt.Errorf("simulator on %s: shutdown: %w", h.addr, err)
	}
	if serr := <-h.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("simulator on %s: serve: %w", h.addr, serr))
	}
	return err
}
