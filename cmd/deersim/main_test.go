package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/internal/sim"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// syncBuffer is stderr shared by run's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesFlagsAsKnobsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr syncBuffer
	addrc := make(chan net.Addr, 1)
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--addr", "127.0.0.1:0", "--latency", "5ms", "--error-rate", "0.25",
			"--capacity", "100", "--retry-after", "3", "--stream-chunks", "7", "--stream-interval", "1ms", "--seed", "9"},
			&stderr, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case c := <-code:
		t.Fatalf("run exited with %d: %s", c, stderr.String())
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr.String() + "/_control")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := sim.DefaultKnobs()
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := sim.Knobs{Latency: 5 * time.Millisecond, ErrorRate: 0.25, Capacity: 100, RetryAfter: 3,
		StreamChunks: 7, StreamInterval: time.Millisecond}
	if got != want {
		t.Errorf("knobs %+v, want %+v", got, want)
	}

	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit code %d after cancel: %s", c, stderr.String())
	}
	if !strings.Contains(stderr.String(), "deersim listening") {
		t.Errorf("no start log: %s", stderr.String())
	}
}

func TestRunRefusesATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var stderr syncBuffer
	if c := run(context.Background(), []string{"--addr", taken.Addr().String()}, &stderr, nil); c != 1 {
		t.Errorf("exit code %d, want 1", c)
	}
	want := "address " + taken.Addr().String() + " already in use: is another deerd or deersim running?"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--error-rate", "2"}, "--error-rate: must be between 0 and 1"},
		{[]string{"--stream-chunks", "0", "--hang-rate", "-1"}, "--hang-rate"},
		{[]string{"--latency", "soon"}, "invalid value"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var stderr syncBuffer
		if c := run(context.Background(), tc.args, &stderr, nil); c != 2 {
			t.Errorf("%v: exit code %d, want 2", tc.args, c)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, stderr.String(), tc.want)
		}
	}
}
