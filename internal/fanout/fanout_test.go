package fanout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failAfter bounds how long a test waits for something that must happen; it
// only turns a hang into a failure, nothing waits for it to pass.
const failAfter = 10 * time.Second

var errSrcClosed = errors.New("source closed")

// step is what one source Read returns.
type step struct {
	data string
	err  error
}

// scriptSrc is a source the test drives: each Read returns the next step the
// test sends, so chunk boundaries are exact and a completed send proves the
// pump took the step (and finished with the one before). Close makes a
// pending Read return, as an HTTP body does.
type scriptSrc struct {
	steps     chan step
	closed    chan struct{}
	closeOnce sync.Once
	closes    atomic.Int32
}

func newSrc() *scriptSrc {
	return &scriptSrc{steps: make(chan step), closed: make(chan struct{})}
}

func (s *scriptSrc) Read(p []byte) (int, error) {
	select {
	case st := <-s.steps:
		if len(st.data) > len(p) {
			panic("step larger than the read buffer")
		}
		return copy(p, st.data), st.err
	case <-s.closed:
		return 0, errSrcClosed
	}
}

func (s *scriptSrc) Close() error {
	s.closes.Add(1)
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// send hands the pump one step. It reports failure with t.Errorf, so it
// may run on a goroutine of its own.
func (s *scriptSrc) send(t *testing.T, data string, err error) bool {
	t.Helper()
	select {
	case s.steps <- step{data, err}:
		return true
	case <-time.After(failAfter):
		t.Errorf("the pump did not take step %q, %v", data, err)
		return false
	}
}

// sendAll sends each chunk, then io.EOF.
func (s *scriptSrc) sendAll(t *testing.T, chunks ...string) {
	t.Helper()
	for _, c := range chunks {
		if !s.send(t, c, nil) {
			return
		}
	}
	s.send(t, "", io.EOF)
}

// waitClosed waits until the stream closed the source.
func (s *scriptSrc) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(failAfter):
		t.Fatal("source not closed")
	}
}

// ending is one call of done.
type ending struct {
	complete bool
	data     []byte
	chunks   []int
}

// doneRec records done's calls.
type doneRec struct {
	calls atomic.Int32
	ch    chan ending
}

func newDone() *doneRec { return &doneRec{ch: make(chan ending, 4)} }

func (d *doneRec) fn(complete bool, data []byte, chunks []int) {
	d.calls.Add(1)
	d.ch <- ending{complete, data, chunks}
}

// wait returns done's call and checks it is the only one so far.
func (d *doneRec) wait(t *testing.T) ending {
	t.Helper()
	select {
	case e := <-d.ch:
		if n := d.calls.Load(); n != 1 {
			t.Fatalf("done called %d times", n)
		}
		return e
	case <-time.After(failAfter):
		t.Fatal("done not called")
		return ending{}
	}
}

type readResult struct {
	s   string
	err error
}

// read does one Read of up to size bytes, failing the test if it blocks.
func read(t *testing.T, r io.Reader, size int) (string, error) {
	t.Helper()
	ch := make(chan readResult, 1)
	go func() {
		p := make([]byte, size)
		n, err := r.Read(p)
		ch <- readResult{string(p[:n]), err}
	}()
	select {
	case res := <-ch:
		return res.s, res.err
	case <-time.After(failAfter):
		t.Fatal("Read blocked")
		return "", nil
	}
}

// expectChunks reads r with a large buffer and checks it returns exactly
// want, one chunk per Read, then wantErr.
func expectChunks(t *testing.T, r io.Reader, want []string, wantErr error) {
	t.Helper()
	for i, c := range want {
		got, err := read(t, r, readSize)
		if err != nil || got != c {
			t.Fatalf("chunk %d: got %q, %v; want %q", i, got, err, c)
		}
	}
	if got, err := read(t, r, readSize); got != "" || !errors.Is(err, wantErr) {
		t.Fatalf("after the data: got %q, %v; want %v", got, err, wantErr)
	}
}

func join(t *testing.T, s *Stream) io.ReadCloser {
	t.Helper()
	r, ok := s.Join()
	if !ok || r == nil {
		t.Fatal("Join refused")
	}
	return r
}

func lengths(chunks []string) []int {
	n := make([]int, len(chunks))
	for i, c := range chunks {
		n[i] = len(c)
	}
	return n
}

var sse = []string{
	"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
	"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
	"data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
	"data: [DONE]\n\n",
}

func TestOneReaderIsByteIdentical(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	r := join(t, s)
	go src.sendAll(t, sse...)
	expectChunks(t, r, sse, io.EOF)
	e := d.wait(t)
	if !e.complete || string(e.data) != strings.Join(sse, "") || !slices.Equal(e.chunks, lengths(sse)) {
		t.Fatalf("done(%v, %q, %v)", e.complete, e.data, e.chunks)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := src.closes.Load(); n != 1 {
		t.Fatalf("source closed %d times", n)
	}
}

func TestReadersJoiningAtDifferentTimesGetTheSameBytes(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	first := join(t, s)
	src.send(t, sse[0], nil)
	src.send(t, sse[1], nil) // sse[0] is recorded once the pump took sse[1]
	second := join(t, s)
	src.send(t, sse[2], nil)
	src.send(t, sse[3], nil)
	third := join(t, s) // joins with everything buffered, before the end
	src.send(t, "", io.EOF)
	e := d.wait(t)
	fourth := join(t, s) // joins after the end: replays the record

	for i, r := range []io.ReadCloser{first, second, third, fourth} {
		t.Run(fmt.Sprint("reader", i+1), func(t *testing.T) {
			expectChunks(t, r, sse, io.EOF)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !e.complete || !slices.Equal(e.chunks, lengths(sse)) {
		t.Fatalf("done(%v, %q, %v)", e.complete, e.data, e.chunks)
	}
}

func TestLateJoinerGetsTheEarlierChunksWithoutWaiting(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	early := join(t, s)
	src.send(t, "a", nil)
	src.send(t, "bb", nil)
	expectPrefix := func(r io.Reader) {
		t.Helper()
		for _, want := range []string{"a", "bb"} {
			if got, err := read(t, r, 64); err != nil || got != want {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		}
	}
	expectPrefix(early)
	// The upstream says nothing more for now; a late joiner must still get
	// what was sent, at once.
	late := join(t, s)
	expectPrefix(late)
	src.sendAll(t, "ccc")
	for _, r := range []io.ReadCloser{early, late} {
		expectChunks(t, r, []string{"ccc"}, io.EOF)
		r.Close()
	}
	if e := d.wait(t); !e.complete || string(e.data) != "abbccc" {
		t.Fatalf("done(%v, %q)", e.complete, e.data)
	}
}

func TestSmallBufferNeverCrossesAChunk(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	r := join(t, s)
	defer r.Close()
	go src.sendAll(t, "abcdefg", "hi")
	for _, want := range []string{"abc", "def", "g", "hi"} {
		if got, err := read(t, r, 3); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	if got, err := read(t, r, 3); got != "" || err != io.EOF {
		t.Fatalf("got %q, %v; want EOF", got, err)
	}
	if got, err := read(t, r, 0); got != "" || err != nil {
		t.Fatalf("empty Read: %q, %v", got, err)
	}
	d.wait(t)
}

func TestDataAndEOFInOneRead(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	r := join(t, s)
	defer r.Close()
	go func() {
		src.send(t, "x", nil)
		src.send(t, "yz", io.EOF)
	}()
	expectChunks(t, r, []string{"x", "yz"}, io.EOF)
	if e := d.wait(t); !e.complete || string(e.data) != "xyz" || !slices.Equal(e.chunks, []int{1, 2}) {
		t.Fatalf("done(%v, %q, %v)", e.complete, e.data, e.chunks)
	}
}

func TestClosingOneOfTwoReadersKeepsTheSource(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	a, b := join(t, s), join(t, s)
	src.send(t, "one", nil)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := read(t, a, 8); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	src.send(t, "two", nil) // the pump still reads: the source is open
	if n := src.closes.Load(); n != 0 {
		t.Fatalf("source closed %d times with a reader left", n)
	}
	src.send(t, "", io.EOF)
	expectChunks(t, b, []string{"one", "two"}, io.EOF)
	b.Close()
	if e := d.wait(t); !e.complete || string(e.data) != "onetwo" {
		t.Fatalf("done(%v, %q)", e.complete, e.data)
	}
	if n := src.closes.Load(); n != 1 {
		t.Fatalf("source closed %d times", n)
	}
}

func TestClosingEveryReaderAbandonsTheStream(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	a, b := join(t, s), join(t, s)
	src.send(t, "partial", nil)
	a.Close()
	b.Close()
	src.waitClosed(t) // the pending Read returns: the upstream call is cancelled
	e := d.wait(t)
	if e.complete || e.data != nil || e.chunks != nil {
		t.Fatalf("done(%v, %q, %v); want false, nil, nil", e.complete, e.data, e.chunks)
	}
	if r, ok := s.Join(); ok || r != nil {
		t.Fatal("Join succeeded on an abandoned stream")
	}
	if _, err := read(t, b, 8); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if n := src.closes.Load(); n != 1 {
		t.Fatalf("source closed %d times", n)
	}
}

func TestBlockedReadReturnsWhenItsReaderCloses(t *testing.T) {
	for _, readers := range []int{1, 2} {
		t.Run(fmt.Sprint(readers, "readers"), func(t *testing.T) {
			src, d := newSrc(), newDone()
			s := New(src, d.fn)
			waiting := make(chan struct{}, 1)
			s.waitHook = func() {
				select {
				case waiting <- struct{}{}:
				default:
				}
			}
			r := join(t, s)
			var other io.ReadCloser
			if readers == 2 {
				other = join(t, s)
			}
			res := make(chan error, 1)
			go func() {
				_, err := r.Read(make([]byte, 8))
				res <- err
			}()
			select {
			case <-waiting:
			case <-time.After(failAfter):
				t.Fatal("Read did not wait")
			}
			r.Close()
			select {
			case err := <-res:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("blocked Read returned %v", err)
				}
			case <-time.After(failAfter):
				t.Fatal("blocked Read did not return on Close")
			}
			if other != nil {
				src.sendAll(t, "rest")
				expectChunks(t, other, []string{"rest"}, io.EOF)
				other.Close()
				if e := d.wait(t); !e.complete {
					t.Fatal("done reported an incomplete stream")
				}
				return
			}
			if e := d.wait(t); e.complete {
				t.Fatal("done reported an abandoned stream complete")
			}
		})
	}
}

func TestSourceErrorComesAfterTheBufferedBytes(t *testing.T) {
	boom := errors.New("upstream reset")
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	reading, idle := join(t, s), join(t, s)
	src.send(t, "c1", nil)
	src.send(t, "c2", boom) // data and error in one Read
	e := d.wait(t)
	if e.complete || e.data != nil || e.chunks != nil {
		t.Fatalf("done(%v, %q, %v); want false, nil, nil", e.complete, e.data, e.chunks)
	}
	if r, ok := s.Join(); ok || r != nil {
		t.Fatal("Join succeeded on a failed stream")
	}
	for _, r := range []io.ReadCloser{reading, idle} {
		expectChunks(t, r, []string{"c1", "c2"}, boom)
		r.Close()
	}
	if n := src.closes.Load(); n != 1 {
		t.Fatalf("source closed %d times", n)
	}
}

func TestSourceFailingAtOnceRefusesJoin(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	src.send(t, "", errors.New("refused"))
	if e := d.wait(t); e.complete {
		t.Fatal("done reported a failed stream complete")
	}
	if _, ok := s.Join(); ok {
		t.Fatal("Join succeeded on a failed stream")
	}
}

func TestStreamWithoutReadersIsReadToTheEnd(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	src.sendAll(t, sse...) // nobody has joined: not abandoned
	e := d.wait(t)
	if !e.complete || string(e.data) != strings.Join(sse, "") {
		t.Fatalf("done(%v, %q)", e.complete, e.data)
	}
	r := join(t, s)
	expectChunks(t, r, sse, io.EOF)
	r.Close()
}

func TestIdleReaderDoesNotSlowTheUpstream(t *testing.T) {
	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	r := join(t, s) // never reads until the upstream is done
	chunks := make([]string, 100)
	for i := range chunks {
		chunks[i] = strings.Repeat(string(rune('a'+i%26)), 1+i)
	}
	src.sendAll(t, chunks...)
	if e := d.wait(t); !e.complete || len(e.chunks) != len(chunks) {
		t.Fatalf("done(%v, %d chunks)", e.complete, len(e.chunks))
	}
	expectChunks(t, r, chunks, io.EOF)
	r.Close()
}

func TestNilDone(t *testing.T) {
	src := newSrc()
	s := New(src, nil)
	r := join(t, s)
	src.sendAll(t, "x")
	expectChunks(t, r, []string{"x"}, io.EOF)
	r.Close()
	src.waitClosed(t)
}

// TestManyReadersRace streams random chunks to readers that join before,
// during and after the stream, some leaving early; run with -race.
func TestManyReadersRace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	chunks := make([]string, 300)
	for i := range chunks {
		b := make([]byte, 1+rng.IntN(200))
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		chunks[i] = string(b)
	}
	want := strings.Join(chunks, "")

	src, d := newSrc(), newDone()
	s := New(src, d.fn)
	const readers = 48
	got := make([]string, readers)
	var wg sync.WaitGroup
	consume := func(i int, r io.ReadCloser) {
		defer wg.Done()
		defer r.Close()
		var buf bytes.Buffer
		p := make([]byte, 1+i*7%300)
		for {
			n, err := r.Read(p)
			buf.Write(p[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				got[i] = "error: " + err.Error()
				return
			}
			if i%8 == 7 && buf.Len() > len(want)/2 {
				got[i] = "left"
				return // leaves early; other readers stay
			}
		}
		got[i] = buf.String()
	}
	// A third join before the stream starts, so it is never abandoned; the
	// rest join from their own goroutines while it runs.
	for i := range readers {
		wg.Add(1)
		if i%3 == 0 {
			go consume(i, join(t, s))
			continue
		}
		go func() {
			r, ok := s.Join()
			if !ok {
				got[i] = "refused"
				wg.Done()
				return
			}
			consume(i, r)
		}()
	}
	go src.sendAll(t, chunks...)
	wg.Wait()
	for i, g := range got {
		if i%8 == 7 && g == "left" {
			continue
		}
		if g != want {
			t.Fatalf("reader %d got %d bytes (%.40q), want %d", i, len(g), g, len(want))
		}
	}
	e := d.wait(t)
	if !e.complete || string(e.data) != want || !slices.Equal(e.chunks, lengths(chunks)) {
		t.Fatalf("done(%v, %d bytes, %d chunks)", e.complete, len(e.data), len(e.chunks))
	}
}

// FuzzReplay checks that any chunking of any bytes reaches a reader, read
// with any buffer size, unchanged and one chunk at most per Read.
func FuzzReplay(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: [DONE]\n\n"), []byte{3, 1, 200}, uint8(4))
	f.Add([]byte{}, []byte{}, uint8(1))
	f.Add([]byte("x"), []byte{0}, uint8(0))
	f.Fuzz(func(t *testing.T, data, cuts []byte, readLen uint8) {
		var chunks []string
		rest := string(data)
		for _, c := range cuts {
			if rest == "" {
				break
			}
			n := min(len(rest), 1+int(c))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		if rest != "" {
			chunks = append(chunks, rest)
		}
		src, d := newSrc(), newDone()
		s := New(src, d.fn)
		r := join(t, s)
		go src.sendAll(t, chunks...)
		var out []byte
		p := make([]byte, 1+int(readLen))
		next := 0 // chunk being read and bytes left in it
		left := 0
		for {
			n, err := r.Read(p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				left = len(chunks[next])
				next++
			}
			if n > left {
				t.Fatalf("Read returned %d bytes with %d left in its chunk", n, left)
			}
			left -= n
			out = append(out, p[:n]...)
		}
		r.Close()
		if !bytes.Equal(out, data) {
			t.Fatalf("got %q, want %q", out, data)
		}
		if e := d.wait(t); !e.complete || !bytes.Equal(e.data, data) || !slices.Equal(e.chunks, lengths(chunks)) {
			t.Fatalf("done(%v, %q, %v)", e.complete, e.data, e.chunks)
		}
	})
}
