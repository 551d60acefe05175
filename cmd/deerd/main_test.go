package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deer-runtime/deer/internal/leaktest"
)

// deerdBin is the deerd binary TestMain builds from this package.
var deerdBin string

// repoRoot is where conf/deer.toml lives.
var repoRoot = filepath.Join("..", "..")

// TestMain builds deerd once (with the race detector when the tests have
// it), runs the tests against it, and checks for leaked goroutines with
// deer's shared goleak options.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deerd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deerd e2e:", err)
		os.Exit(1)
	}
	deerdBin = filepath.Join(dir, "deerd")
	args := []string{"build", "-o", deerdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "deerd e2e: building deerd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	opts := append(leaktest.Options(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
	goleak.VerifyTestMain(m, opts...)
}

// cleanEnv is the environment deerd runs with: PATH and HOME, the L3 store
// in a temporary directory (so no test writes ./data), and the test's own
// variables, which win. A race-enabled deerd waits a second at exit (for
// late race reports) unless told otherwise; 50 ms is plenty for one process.
func cleanEnv(t testing.TB, vars ...string) []string {
	t.Helper()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DEER_L3_PATH=" + t.TempDir(),
		"GORACE=atexit_sleep_ms=50",
	}
	return append(env, vars...)
}

// result is what a deerd that ran to its end left.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) output() string { return r.stdout + r.stderr }

// runDeerd runs deerd in dir to completion (a command that exits by itself:
// --check-config, --print-config, a start that fails).
func runDeerd(t testing.TB, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, deerdBin, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	switch e := err.(type) {
	case nil:
	case *exec.ExitError:
		res.code = e.ExitCode()
	default:
		t.Fatalf("deerd %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("deerd %s did not exit within a minute:\n%s", strings.Join(args, " "), res.output())
	}
	return res
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a running deerd.
type server struct {
	t      testing.TB
	cmd    *exec.Cmd
	url    string
	addr   string
	stderr *syncBuffer
	stdout *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, once done is closed
}

// startDeerd starts deerd on a free loopback port in a temporary working
// directory and waits until it is ready. The process is killed at the end
// of the test if it is still running.
func startDeerd(t testing.TB, env []string, args ...string) *server {
	t.Helper()
	s := launch(t, freeAddr(t), env, args...)
	s.waitReady()
	return s
}

func launch(t testing.TB, addr string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, addr: addr, url: "http://" + addr, stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(deerdBin, append([]string{"--addr", addr}, args...)...)
	s.cmd.Dir, s.cmd.Env = t.TempDir(), env
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting deerd: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

var client = &http.Client{Timeout: 10 * time.Second}

// waitReady polls /health/ready until it answers 200; it fails the test if
// deerd exits first or is not ready within the deadline.
func (s *server) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			s.t.Fatalf("deerd exited before it was ready (%v):\n%s", s.err, s.stderr)
		default:
		}
		if resp, err := client.Get(s.url + "/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("deerd not ready after 30s:\n%s", s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// do sends a request and returns the response and its body.
func (s *server) do(method, path, body string, header ...string) (*http.Response, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, b
}

// getJSON fetches path, checks the status and decodes the body.
func (s *server) getJSON(path string, want int) map[string]any {
	s.t.Helper()
	resp, body := s.do(http.MethodGet, path, "")
	if resp.StatusCode != want {
		s.t.Fatalf("GET %s = %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	return decode(s.t, body)
}

// stop sends SIGTERM and waits for deerd to exit within its shutdown grace
// period (plus a margin for the race detector's exit work).
func (s *server) stop() result {
	s.t.Helper()
	return s.signal(syscall.SIGTERM)
}

// signal sends sig and waits for deerd to exit, as stop does.
func (s *server) signal(sig os.Signal) result {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("%v: %v", sig, err)
	}
	return s.wait(shutdownGrace + 10*time.Second)
}

// wait waits up to d for deerd to exit by itself.
func (s *server) wait(d time.Duration) result {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		s.t.Fatalf("deerd did not exit within %v:\n%s", d, s.stderr)
	}
	res := result{stdout: s.stdout.String(), stderr: s.stderr.String()}
	if e, ok := s.err.(*exec.ExitError); ok {
		res.code = e.ExitCode()
	} else if s.err != nil {
		s.t.Fatalf("deerd: %v", s.err)
	}
	return res
}

func decode(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, body)
	}
	return doc
}

// at walks a dotted path through a decoded document.
func at(t testing.TB, doc map[string]any, path string) any {
	t.Helper()
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object above %q in %v", path, k, doc)
		}
		if cur, ok = m[k]; !ok {
			t.Fatalf("missing field %s in %v", path, doc)
		}
	}
	return cur
}

// writeFile writes content to name in a new temporary directory and
// returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
