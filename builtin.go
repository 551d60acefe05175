package deer

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/sim"
)

// builtinSim is a simulator deer serves for an upstream with builtin = true.
type builtinSim struct {
	upstream string
	addr     string
	srv      *http.Server
	served   chan error
}

// startBuiltins serves the simulator at the base_url of every builtin
// upstream. A taken port is an error naming the upstream and the address:
// two deerd processes must not fight over one simulator port.
func (rt *Runtime) startBuiltins(cfg *conf.Config) error {
	for _, name := range sortedKeys(cfg.Upstreams) {
		up := cfg.Upstreams[name]
		if !up.Builtin {
			continue
		}
		u, err := url.Parse(up.BaseURL)
		if err != nil {
			return fmt.Errorf("upstreams.%s.base_url: %w", name, err)
		}
		ln, err := sim.Listen(u.Host)
		if err != nil {
			return fmt.Errorf("upstreams.%s.builtin: cannot serve the simulator: %w", name, err)
		}
		opts := []sim.Option{sim.WithLogger(rt.log.With().Str("component", "sim/"+name).Logger())}
		if len(up.Models) > 0 {
			opts = append(opts, sim.WithModels(up.Models...))
		}
		s := sim.New(sim.DefaultKnobs(), opts...)
		b := &builtinSim{upstream: name, addr: ln.Addr().String(), srv: s.Server(), served: make(chan error, 1)}
		go func() { b.served <- b.srv.Serve(ln) }()
		rt.builtins = append(rt.builtins, b)
		rt.log.Info().Str("upstream", name).Str("addr", b.addr).Msg("serving the built-in simulator")
	}
	return nil
}

// stopBuiltins shuts the simulators down (hung simulated requests are
// dropped at once).
func (rt *Runtime) stopBuiltins(ctx context.Context) {
	for _, b := range rt.builtins {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := b.srv.Shutdown(sctx); err != nil {
			_ = b.srv.Close()
		}
		cancel()
		<-b.served
	}
	rt.builtins = nil
}
