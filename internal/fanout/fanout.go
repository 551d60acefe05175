package fanout

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrClosed is returned by Read on a reader that was closed, including a Read
// that was waiting when the reader was closed.
var ErrClosed = errors.New("fanout: read on closed reader")

// errAbandoned is the end state of a stream every reader left; no reader can
// observe it (Join refuses an abandoned stream), it is kept for clarity.
var errAbandoned = errors.New("fanout: stream abandoned")

// readSize is the pump's read buffer. A source Read returns what it has, so
// chunks are as large as the upstream's writes, bounded by this.
const readSize = 32 << 10

// state is where a Stream is in its life.
type state int

const (
	running   state = iota // the pump is reading the source
	complete               // the source reached io.EOF
	failed                 // the source returned another error
	abandoned              // every reader closed before the end; the source was closed
)

func (s state) String() string {
	switch s {
	case running:
		return "running"
	case complete:
		return "complete"
	case failed:
		return "failed"
	case abandoned:
		return "abandoned"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Stream is one upstream stream shared by any number of readers. Build it
// with New.
type Stream struct {
	src      io.ReadCloser
	done     func(complete bool, data []byte, chunks []int)
	closeSrc sync.Once

	mu      sync.Mutex
	state   state
	err     error         // what readers get after the data: io.EOF or the source's error
	data    []byte        // every byte so far; bytes below len are never written again
	chunks  []int         // the length of each source Read that returned data
	changed chan struct{} // closed and replaced whenever data, chunks or state change
	open    int           // readers joined and not yet closed

	// waitHook, when set (by tests, before the first Join), is called each
	// time a Read is about to wait for data.
	waitHook func()
}

// New starts pumping src (one goroutine) into a shared, growing buffer and
// returns at once. Each src.Read that returns data becomes one chunk; src is
// read as fast as it delivers, whether readers keep up or not, and the
// buffer is not bounded (LLM streams are small).
//
// done, unless nil, is called exactly once, from the pump goroutine, after
// the stream ended and src was closed; the goroutine exits when it returns.
// complete is true when src reached io.EOF: data then holds every byte and
// chunks the length of each Read as it came, for byte-identical replay. Both
// are shared with the stream's readers and must not be modified. complete is
// false, and data and chunks nil, when src failed or the stream was
// abandoned.
//
// src.Close must make a pending src.Read return (true of net/http response
// bodies, io.Pipe and network connections): that is how an abandoned stream
// cancels the upstream call.
func New(src io.ReadCloser, done func(complete bool, data []byte, chunks []int)) *Stream {
	s := &Stream{src: src, done: done, changed: make(chan struct{})}
	go s.pump()
	return s
}

// Join returns a reader that starts at the first byte, and true; or nil and
// false when there is no stream left to read. The rule:
//
//   - while the source is being read, Join succeeds;
//   - after the source reached io.EOF, Join succeeds and the reader replays
//     the recorded stream, then io.EOF;
//   - once the source failed, Join fails, whether or not bytes had arrived
//     (a new caller would get a truncated stream and an error, so it should
//     make its own call); readers that joined before the failure still get
//     the buffered bytes, then the error;
//   - once the stream was abandoned (every reader closed before the end),
//     Join fails.
//
// A stream that no reader has joined yet is never abandoned: its source is
// read to the end and recorded. Every reader must be closed.
func (s *Stream) Join() (r io.ReadCloser, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == failed || s.state == abandoned {
		return nil, false
	}
	s.open++
	return &reader{s: s, gone: make(chan struct{})}, true
}

// pump reads the source until it ends, then closes it and calls done.
func (s *Stream) pump() {
	buf := make([]byte, readSize)
	for {
		n, err := s.src.Read(buf)
		if n < 0 || n > len(buf) {
			n, err = 0, fmt.Errorf("fanout: source Read returned %d bytes for a %d-byte buffer", n, len(buf))
		}
		s.mu.Lock()
		if s.state == abandoned {
			// Close already released the buffer; what the closed source
			// returned does not matter.
			s.mu.Unlock()
			break
		}
		if n > 0 {
			s.data = append(s.data, buf[:n]...)
			s.chunks = append(s.chunks, n)
		}
		switch {
		case err == io.EOF:
			s.state, s.err = complete, io.EOF
		case err != nil:
			s.state, s.err = failed, err
		}
		if n > 0 || err != nil {
			s.broadcast()
		}
		s.mu.Unlock()
		if err != nil {
			break
		}
	}
	s.closeSource()

	s.mu.Lock()
	ok := s.state == complete
	// Full slice expressions: a done that appends cannot write into the
	// buffer readers share.
	data, chunks := s.data[:len(s.data):len(s.data)], s.chunks[:len(s.chunks):len(s.chunks)]
	s.mu.Unlock()
	if s.done == nil {
		return
	}
	if ok {
		s.done(true, data, chunks)
	} else {
		s.done(false, nil, nil)
	}
}

// broadcast wakes every waiting Read. Call with s.mu held.
func (s *Stream) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// closeSource closes the source once, whoever gets there first: the pump at
// the end, or the last reader leaving early.
func (s *Stream) closeSource() {
	s.closeSrc.Do(func() { _ = s.src.Close() })
}

// reader is one caller's view of a Stream. Its fields are guarded by s.mu,
// except gone, which is closed (under s.mu) by Close.
type reader struct {
	s      *Stream
	gone   chan struct{}
	closed bool
	next   int // index of the chunk the next Read returns from
	start  int // offset of chunk next in s.data
	off    int // offset of the next byte to return; start <= off < start+chunks[next]
}

var _ io.ReadCloser = (*reader)(nil)

// Read blocks until there is data beyond what this reader has returned, or
// the stream ended, or the reader is closed. It returns at most the rest of
// one chunk; after the last byte, io.EOF or the source's error.
func (r *reader) Read(p []byte) (int, error) {
	s := r.s
	s.mu.Lock()
	for {
		if r.closed {
			s.mu.Unlock()
			return 0, ErrClosed
		}
		if len(p) == 0 {
			s.mu.Unlock()
			return 0, nil
		}
		if r.next < len(s.chunks) {
			end := r.start + s.chunks[r.next]
			n := copy(p, s.data[r.off:end])
			r.off += n
			if r.off == end {
				r.next++
				r.start = end
			}
			s.mu.Unlock()
			return n, nil
		}
		if s.state != running {
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		changed := s.changed
		s.mu.Unlock()
		if h := s.waitHook; h != nil {
			h()
		}
		select {
		case <-changed:
		case <-r.gone:
		}
		s.mu.Lock()
	}
}

// Close leaves the stream; a second Close does nothing. When the last open
// reader leaves a stream that is still running, the stream is abandoned: the
// source is closed, which cancels the upstream call, and done reports false.
func (r *reader) Close() error {
	s := r.s
	s.mu.Lock()
	if r.closed {
		s.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.gone)
	s.open--
	abandon := s.open == 0 && s.state == running
	if abandon {
		s.state, s.err = abandoned, errAbandoned
		s.data, s.chunks = nil, nil
		s.broadcast()
	}
	s.mu.Unlock()
	if abandon {
		s.closeSource()
	}
	return nil
}
