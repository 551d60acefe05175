// Package redistest starts a real redis-server (the Debian package
// redis-server, installed by scripts/test-deps.sh) for a test: on a free
// loopback port, with no persistence and no config file, in the test's
// temporary directory, stopped when the test ends.
//
// Without redis-server on PATH the test is skipped, unless
// DEER_REQUIRE_REDIS=1 (set by .ci/run), which makes it fail instead: CI
// must not pass by skipping what multi-node deer rests on. DEER_REDIS_SERVER
// names another binary.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deer-runtime/deer/internal/cluster"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
	out lockedBuffer // the process's output, for failure messages
}

// Binary returns the redis-server to run, or "" when there is none.
func Binary() string {
	if b := os.Getenv("DEER_REDIS_SERVER"); b != "" {
		return b
	}
	b, _ := exec.LookPath("redis-server")
	return b
}

// Start runs a redis-server for t and waits until it answers PING.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("DEER_REQUIRE_REDIS") == "1" {
			t.Fatal("redistest: no redis-server on PATH and DEER_REQUIRE_REDIS=1: run scripts/test-deps.sh")
		}
		t.Skip("redistest: no redis-server on PATH (scripts/test-deps.sh installs it)")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's address as cluster.redis_url takes it.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a go-redis client of the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Dial returns a client of the server made as a deer node makes it
// (cluster.Dial: its timeouts and retries), closed when the test ends.
func (s *Server) Dial() *redis.Client {
	c, err := cluster.Dial(s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it to
// exit. Its data is gone (no persistence). Killing a stopped server does
// nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a killed server again on the same port, empty, and waits
// until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting %s: %v", s.bin, err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			s.cmd = nil
			s.t.Fatalf("redistest: redis-server on %s did not answer within 10 s: %v\n%s", s.Addr(), err, s.out.String())
		}
		s.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // waiting for an external process to listen: nothing to signal on
		s.mu.Lock()
	}
}

// lockedBuffer collects output written from the process's copying
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// String names the server in test output.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr()) }
