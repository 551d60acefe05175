package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is one process the bench started: a server under test, the
// simulator, or nginx (whose workers are its children).
type Proc struct {
	Name string
	Addr string // host:port it serves
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// Pin pins commands to CPUs with taskset; with no taskset (or one CPU) it
// pins nothing and the report says so.
type Pin struct {
	Taskset string // path of taskset; "" pins nothing
}

// Command returns argv pinned to cpu.
func (p Pin) Command(cpu int, argv ...string) []string {
	if p.Taskset == "" {
		return argv
	}
	return append([]string{p.Taskset, "-c", strconv.Itoa(cpu)}, argv...)
}

// Start runs argv (already pinned) with its output in logDir/name.log and
// waits until ready answers true, for at most 60 s.
func Start(ctx context.Context, name, addr, logDir string, env []string, argv []string, ready func(context.Context) bool) (*Proc, error) {
	logf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: Stop reaches its children
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Addr: addr, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for !ready(ctx) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited during start-up; see %s", name, logf.Name())
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s not ready on %s within 60 s; see %s", name, addr, logf.Name())
		}
	}
	return p, nil
}

// Pid is the process id (for nginx, the master's).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop ends the process group: SIGTERM, then SIGKILL after 10 s.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// Answers is a readiness check: a GET of url answered with any status
// below 500.
func Answers(url string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode < 500
	}
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// Usage is what a process tree has used.
type Usage struct {
	CPU     time.Duration // user + system time, summed over the tree
	PeakRSS int64         // bytes: VmHWM summed over the tree
}

// TreeUsage reads the CPU time and peak resident memory of pid and all its
// descendants from /proc.
func TreeUsage(pid int) (Usage, error) {
	var u Usage
	for _, p := range tree(pid) {
		cpu, err := cpuTime(p)
		if err != nil {
			if p == pid {
				return Usage{}, err
			}
			continue // a child that just exited
		}
		u.CPU += cpu
		if hwm, err := statusKB(p, "VmHWM"); err == nil {
			u.PeakRSS += hwm * 1024
		}
	}
	return u, nil
}

// ResetPeak restarts the peak-RSS count of pid's tree (Linux clear_refs 5),
// so that the next TreeUsage reports the peak since now. It reports whether
// the kernel allowed it; if not, peaks count from the process's start.
func ResetPeak(pid int) bool {
	ok := true
	for _, p := range tree(pid) {
		if os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p), []byte("5"), 0) != nil {
			ok = false
		}
	}
	return ok
}

// tree is pid and its descendants, found through each process's parent id.
func tree(pid int) []int {
	parent := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, err := ppid(child); err == nil {
			parent[pp] = append(parent[pp], child)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, parent[out[i]]...)
	}
	return out
}

// statFields are the fields of /proc/PID/stat after the command name (which
// may hold spaces, so it is cut at the last ')').
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed /proc stat")
	}
	return strings.Fields(string(b[i+1:])), nil
}

func ppid(pid int) (int, error) {
	f, err := statFields(pid)
	if err != nil || len(f) < 2 {
		return 0, errors.New("no ppid")
	}
	return strconv.Atoi(f[1]) // state, ppid, …
}

func cpuTime(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// After the name: state(0) ppid(1) … utime(11) stime(12).
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * clockTick, nil
}

// statusKB reads a "Key: N kB" line of /proc/PID/status.
func statusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", key, pid)
}

// OnlineCPUs counts the machine's online CPUs from sysfs, whatever this
// process's own affinity (runtime.NumCPU counts only the CPUs it may use,
// and make bench pins deerbench to one). It falls back to runtime.NumCPU.
func OnlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for part := range strings.SplitSeq(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if isRange {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || z < a {
			return runtime.NumCPU()
		}
		n += z - a + 1
	}
	return n
}
