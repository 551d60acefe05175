package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/deer-runtime/deer/internal/bench"
)

// Launch says where the binaries are and where the processes go.
type Launch struct {
	Bin      string // directory with deerd and deersim
	Work     string // scratch: deerd.toml, logs/, the L3 store
	BasePort int    // deersim listens on BasePort+1, deerd on BasePort+3
}

// Processes are a running deersim and the deerd in front of it, started by
// StartProcesses (bench.Start: each in its own process group, logs in
// Work/logs).
type Processes struct {
	Sim, Deerd *bench.Proc
	Config     string   // deerd's configuration file, as written
	Commands   []string // the command lines, for the report
}

// StartProcesses starts deersim (latency p.SimLatency) and then deerd with
// DeerdConfig and FaultInjectionEnv, each ready when it answers.
func StartProcesses(ctx context.Context, l Launch, p Plan) (*Processes, error) {
	logs := filepath.Join(l.Work, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	simAddr := "127.0.0.1:" + strconv.Itoa(l.BasePort+1)
	addr := "127.0.0.1:" + strconv.Itoa(l.BasePort+3)
	ps := &Processes{}
	simArgv := []string{filepath.Join(l.Bin, "deersim"), "--addr", simAddr, "--latency", p.SimLatency.String()}
	var err error
	ps.Sim, err = bench.Start(ctx, "deersim", simAddr, logs, nil, simArgv, bench.Answers("http://"+simAddr+"/_stats"))
	if err != nil {
		return nil, err
	}
	l3 := filepath.Join(l.Work, "data", "cache")
	if err := os.RemoveAll(l3); err != nil { // a cold cache, as in every run
		ps.Stop()
		return nil, err
	}
	ps.Config = DeerdConfig(addr, "http://"+simAddr, l3, p)
	path := filepath.Join(l.Work, "deerd.toml")
	if err := os.WriteFile(path, []byte(ps.Config), 0o644); err != nil {
		ps.Stop()
		return nil, err
	}
	deerdArgv := []string{filepath.Join(l.Bin, "deerd"), "--config", path}
	ps.Deerd, err = bench.Start(ctx, "deerd", addr, logs, []string{FaultInjectionEnv}, deerdArgv, bench.Answers("http://"+addr+"/health/live"))
	if err != nil {
		ps.Stop()
		return nil, fmt.Errorf("deerd: %w", err)
	}
	ps.Commands = []string{
		"bin/deersim --addr " + simAddr + " --latency " + p.SimLatency.String(),
		FaultInjectionEnv + " bin/deerd --config " + path,
	}
	return ps, nil
}

// Options are the Run options for these processes.
func (ps *Processes) Options(p Plan) Options {
	return Options{Plan: p, Deerd: "http://" + ps.Deerd.Addr, Sim: "http://" + ps.Sim.Addr, PID: ps.Deerd.Pid()}
}

// Stop ends deerd, then deersim.
func (ps *Processes) Stop() {
	if ps == nil {
		return
	}
	ps.Deerd.Stop()
	ps.Sim.Stop()
}
