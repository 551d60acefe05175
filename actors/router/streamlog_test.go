package router

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// How a watched stream ended is decided by what happened first: its end,
// a failed read, or its caller closing it.
func TestWatchedStreamTellsHowItEnded(t *testing.T) {
	cases := []struct {
		name    string
		body    io.Reader
		read    bool // read to the end (or to the error) before closing
		how     int32
		timeout bool
	}{
		{"read to its end", strings.NewReader("data: x\n\n"), true, streamEnded, false},
		{"closed before its end", strings.NewReader("data: x\n\n"), false, streamCut, false},
		{"upstream broke off", iotest.ErrReader(errors.New("connection reset")), true, streamBroken, false},
		{"task timed out", iotest.ErrReader(context.DeadlineExceeded), true, streamBroken, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			var how int32
			var timeout bool
			s := &watchedStream{ReadCloser: io.NopCloser(c.body), closed: func(h int32, to bool) { calls++; how, timeout = h, to }}
			if c.read {
				_, _ = io.ReadAll(s)
			}
			_ = s.Close()
			_ = s.Close()
			if calls != 1 || how != c.how || timeout != c.timeout {
				t.Errorf("reported %d times: how %d timeout %v, want once: %d %v", calls, how, timeout, c.how, c.timeout)
			}
		})
	}
}
