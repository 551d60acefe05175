package router

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deer-runtime/deer/messages"
)

// How a streamed answer ended, as its caller saw it.
const (
	streamOpen   int32 = iota
	streamEnded        // read to its end
	streamBroken       // a read failed: the upstream broke off, or the task's time ran out
	streamCut          // closed before its end: the caller went away
)

// watchedStream is a streamed answer as its caller gets it. A stream task
// is not over when its headers come: the router writes the task's log line
// and counts its outcome when the caller closes the stream, with the
// stream's real duration and how it ended (client_closed when the caller
// left first).
type watchedStream struct {
	io.ReadCloser
	how     atomic.Int32
	timeout atomic.Bool // the read that broke failed on a deadline
	once    sync.Once
	closed  func(how int32, timeout bool)
}

func (s *watchedStream) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		s.how.CompareAndSwap(streamOpen, streamEnded)
	case err != nil:
		if errors.Is(err, context.DeadlineExceeded) {
			s.timeout.Store(true)
		}
		s.how.CompareAndSwap(streamOpen, streamBroken)
	}
	return n, err
}

// Close decides "cut" before it closes the body, so that a read failing
// because of this close is not taken for the upstream breaking off.
func (s *watchedStream) Close() error {
	s.how.CompareAndSwap(streamOpen, streamCut)
	err := s.ReadCloser.Close()
	s.once.Do(func() { s.closed(s.how.Load(), s.timeout.Load()) })
	return err
}

// streamClosed tells the router a caller closed a streamed answer.
type streamClosed struct {
	task    *messages.Task
	result  *messages.TaskResult
	start   time.Time // when the task was accepted
	how     int32
	timeout bool
}

// watch hands res's stream to its caller wrapped, and defers the task's
// log line and outcome to the stream's close (streamDone).
func (r *Router) watch(t *messages.Task, res *messages.TaskResult) {
	msg := &streamClosed{task: t, result: res, start: r.d.Clock.Now().Add(-res.Latency)}
	l := r.link
	res.Stream = &watchedStream{ReadCloser: res.Stream, closed: func(how int32, timeout bool) {
		msg.how, msg.timeout = how, timeout
		l.mu.Lock()
		system, self := l.system, l.self
		l.mu.Unlock()
		system.Root.Send(self, msg)
	}}
}

// streamDone logs and counts a streamed task once its caller closed the
// stream: its latency is the whole stream's, its outcome how it ended.
func (r *Router) streamDone(now time.Time, msg *streamClosed) {
	res := *msg.result // the caller's copy stays as it was given
	res.Stream = nil
	headers := res.Latency
	res.Latency = now.Sub(msg.start)
	switch msg.how {
	case streamCut:
		res.Status = messages.TaskFailed
		res.Err = &messages.TaskError{Code: messages.CodeClientClosed, Message: "the caller closed the stream before its end"}
	case streamBroken:
		code := messages.CodeUpstream
		if msg.timeout {
			code = messages.CodeTimeout
		}
		res.Status = messages.TaskFailed
		res.Err = &messages.TaskError{Code: code, Message: "the stream broke off before its end"}
	}
	r.done(msg.task, &res, true, headers)
}
