package bench

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/deer-runtime/deer/internal/load"
)

// Results is everything a run measured, and what the report needs to say
// how. It is also written as JSON next to the report.
type Results struct {
	Plan     Plan      `json:"plan"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	// Pinned says proxies ran on CPU 0 and deerload and deersim on CPU 1.
	Pinned bool `json:"pinned"`
	// ClearRefs says peak RSS was reset before each step (else it is the
	// peak since the process started).
	ClearRefs bool     `json:"clear_refs"`
	Targets   []string `json:"targets"`
	Notes     []string `json:"notes,omitempty"`
	// Commands are the distinct deerload command lines run, in order, with
	// repeated shapes (other rates, other URLs) folded.
	Commands []string           `json:"commands"`
	PhaseA   *load.RoundsResult `json:"phase_a"`
	// PhaseAAlone are the targets measured in Phase A rounds of their own
	// (with direct calls), appended to PhaseA in Targets order.
	PhaseAAlone []string  `json:"phase_a_alone,omitempty"`
	PhaseB      []Step    `json:"phase_b"`
	PhaseC      []Feature `json:"phase_c"`
	// The structured results behind Phase C's cache, coalescing and
	// batching rows (nil when not measured, as in runs saved before them).
	CacheHit    *CacheHit   `json:"cache_hit,omitempty"`
	Coalescing  *Coalescing `json:"coalescing,omitempty"`
	Batching    *Batching   `json:"batching,omitempty"`
	Zipf        *ZipfRun    `json:"zipf,omitempty"`
	DeerdConfig string      `json:"deerd_config"`
	NginxConfig string      `json:"nginx_config,omitempty"`
}

// Step is one target at one rate in Phase B.
type Step struct {
	Target  string        `json:"target"`
	Rate    float64       `json:"rate"`
	Skipped string        `json:"skipped,omitempty"`
	Result  load.Result   `json:"result"`
	CPU     time.Duration `json:"cpu_ns"`   // the proxy's CPU time during the step
	PeakRSS int64         `json:"peak_rss"` // bytes; the proxy's VmHWM
	// OverheadP50US and OverheadP99US are deer_overhead_seconds quantiles
	// over the step (deerd only; NaN otherwise, written as null).
	OverheadP50US float64 `json:"-"`
	OverheadP99US float64 `json:"-"`
}

// stepJSON is Step as written: the overhead quantiles as numbers or null
// (JSON has no NaN).
type stepJSON struct {
	stepFields
	OverheadP50US *float64 `json:"overhead_p50_us"`
	OverheadP99US *float64 `json:"overhead_p99_us"`
}

type stepFields Step // Step without its methods, so that json uses the struct tags

// MarshalJSON writes NaN overhead quantiles as null.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepJSON{stepFields: stepFields(s), OverheadP50US: finite(s.OverheadP50US), OverheadP99US: finite(s.OverheadP99US)})
}

// UnmarshalJSON reads what MarshalJSON wrote (null overhead as NaN).
func (s *Step) UnmarshalJSON(b []byte) error {
	var j stepJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Step(j.stepFields)
	s.OverheadP50US, s.OverheadP99US = orNaN(j.OverheadP50US), orNaN(j.OverheadP99US)
	return nil
}

func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Machine describes where the run ran.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	// OpenFiles is the open-file limit the processes ran with (soft): it
	// caps the connections a proxy can hold once latency piles them up.
	OpenFiles uint64            `json:"open_files,omitempty"`
	Versions  map[string]string `json:"versions"`
}

func newResults(p Plan) *Results {
	return &Results{Plan: p, Started: time.Now().UTC(), Machine: Machine{Cores: OnlineCPUs(), Versions: map[string]string{}}}
}

// command records a deerload command line once per shape: the first of each
// mode and phase, with the binary's directory dropped.
func (res *Results) command(argv []string) {
	var parts []string
	for _, a := range argv {
		if strings.HasSuffix(a, "/deerload") {
			a = "deerload"
		}
		if strings.ContainsAny(a, ` "{}:`) {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	line := strings.Join(parts, " ")
	shape := shapeOf(argv)
	for _, c := range res.Commands {
		if shapeOf(strings.Fields(c)) == shape {
			return
		}
	}
	res.Commands = append(res.Commands, line)
}

// shapeOf is a command's mode and flags without their values, which tells a
// new kind of run from the same kind at another rate or URL.
func shapeOf(argv []string) string {
	var flags []string
	for _, a := range argv {
		if a == "rate" || a == "rounds" || strings.HasPrefix(a, "--") {
			flags = append(flags, a)
		}
	}
	return strings.Join(flags, " ")
}

// ThisMachine describes the machine this process runs on: its CPU model,
// online cores, kernel, open-file limit, and the Go version as
// Versions["go"].
func ThisMachine() Machine {
	m := Machine{Cores: OnlineCPUs(), Versions: map[string]string{"go": runtime.Version()}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		m.OpenFiles = lim.Cur
	}
	return m
}

// DescribeMachine fills in the CPU, kernel and versions of the tools.
func (res *Results) DescribeMachine(opts Options, deerdVersion string) {
	m := ThisMachine()
	res.Machine.CPU, res.Machine.Cores, res.Machine.Kernel, res.Machine.OpenFiles = m.CPU, m.Cores, m.Kernel, m.OpenFiles
	v := res.Machine.Versions
	v["go"] = m.Versions["go"]
	v["deerd"] = deerdVersion
	if opts.Nginx != "" {
		v["nginx"] = firstLine(exec.Command(opts.Nginx, "-v"))
	}
	if opts.Node != "" && opts.Portkey != "" {
		v["node"] = firstLine(exec.Command(opts.Node, "--version"))
		v["portkey"] = portkeyVersion(opts.Portkey)
	}
}

// firstLine runs cmd and returns the first line it printed on stdout or
// stderr (nginx -v prints on stderr).
func firstLine(cmd *exec.Cmd) string {
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// portkeyVersion reads the package name and version from the package.json
// above build/start-server.js.
func portkeyVersion(startServer string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(startServer)), "package.json"))
	var pkg struct{ Name, Version string }
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		return "unknown"
	}
	return pkg.Name + " " + pkg.Version
}
