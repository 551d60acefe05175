package sim

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"syscall"
	"time"
)

// ShutdownGrace bounds how long Serve waits for in-flight requests once its
// context ends; then the remaining connections are closed.
const ShutdownGrace = 10 * time.Second

// ErrAddrInUse is matched (errors.Is) by the error of Listen when the address
// is taken.
var ErrAddrInUse = errors.New("address already in use")

// AddrInUseError says which address is taken; it unwraps to ErrAddrInUse and
// the system error.
type AddrInUseError struct {
	Addr string
	Err  error
}

func (e *AddrInUseError) Error() string {
	return fmt.Sprintf("address %s already in use: is another deerd or deersim running?", e.Addr)
}

func (e *AddrInUseError) Unwrap() []error { return []error{ErrAddrInUse, e.Err} }

// Listen opens a TCP listener on addr, failing with *AddrInUseError when the
// port is taken.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, &AddrInUseError{Addr: addr, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("simulator: listen on %q: %w", addr, err)
	}
	return ln, nil
}

// Server returns an http.Server for s whose Shutdown also closes s (see
// Close), so hung requests do not hold the shutdown up. No write timeout:
// latency and streams may be long on purpose.
func (s *Simulator) Server() *http.Server {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(s.log, "", 0),
	}
	srv.RegisterOnShutdown(s.Close)
	return srv
}

// Serve serves s on ln until ctx ends, then shuts down gracefully (at most
// ShutdownGrace). It returns nil after a clean shutdown.
func (s *Simulator) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.Server()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("simulator: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("simulator: shutdown: %w", err)
	}
	<-served // http.ErrServerClosed
	return err
}

// ListenAndServe is Listen then Serve.
func (s *Simulator) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}
