package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/deer-runtime/deer/messages"
)

// Answer is an upstream answer as the cache stores it.
type Answer struct {
	Status int
	Header http.Header // as relayed, minus hop-by-hop headers, Content-Length, Date, Set-Cookie
	Body   []byte      // the whole body; for a stream, its bytes as sent (SSE text)
	// Chunks, for a stream, are the lengths of the chunks as they arrived,
	// so replay can flush chunk by chunk; nil for a non-stream answer.
	Chunks []int
	Stream bool
}

// answerVersion is the first byte of an encoded Answer. A new layout gets
// a new version; DecodeAnswer refuses versions it does not know, which the
// caller treats as a miss (an L3 file may outlive the build that wrote it).
const answerVersion = 1

const flagStream = 1 << 0

// EncodeAnswer is the stored form of a (see DecodeAnswer for the layout).
// Headers that are never stored (StoredHeader) are dropped here too, so an
// Answer built by hand is safe to store; chunk lengths that are not
// positive or do not add up to the body are dropped (the stream then
// replays as one chunk). Equal answers encode to equal bytes.
func EncodeAnswer(a Answer) []byte {
	h := StoredHeader(a.Header)
	names := slices.Sorted(maps.Keys(h))
	size := 2 + binary.MaxVarintLen64*(3+len(a.Chunks)) + len(a.Body)
	for _, k := range names {
		size += 2*binary.MaxVarintLen64 + len(k)
		for _, v := range h[k] {
			size += binary.MaxVarintLen64 + len(v)
		}
	}
	b := make([]byte, 0, size)
	var flags byte
	if a.Stream {
		flags |= flagStream
	}
	b = append(b, answerVersion, flags)
	b = binary.AppendUvarint(b, uint64(max(a.Status, 0)))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendBytes(b, k)
		b = binary.AppendUvarint(b, uint64(len(h[k])))
		for _, v := range h[k] {
			b = appendBytes(b, v)
		}
	}
	b = appendBytes(b, a.Body)
	if a.Stream {
		chunks := a.Chunks
		if !chunksCover(chunks, len(a.Body)) {
			chunks = nil
		}
		b = binary.AppendUvarint(b, uint64(len(chunks)))
		for _, n := range chunks {
			b = binary.AppendUvarint(b, uint64(n))
		}
	}
	return b
}

func appendBytes[S string | []byte](b []byte, s S) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// chunksCover reports whether chunks are positive lengths adding up to n.
func chunksCover(chunks []int, n int) bool {
	sum := 0
	for _, c := range chunks {
		if c <= 0 || c > n-sum {
			return false
		}
		sum += c
	}
	return sum == n
}

// DecodeAnswer reads an Answer written by EncodeAnswer. The layout, after
// the version byte and a flags byte (bit 0: stream), is uvarints and
// length-prefixed byte strings: status; the number of header names, then
// each name, its number of values and the values; the body; for a stream,
// the number of chunk lengths and the lengths. Body aliases b (capped, so
// an append cannot write into b): the memory tiers share stored values, so
// it must not be modified. A malformed b is an error naming what is wrong
// and where, never a panic, and never an allocation larger than b.
func DecodeAnswer(b []byte) (Answer, error) {
	d := decoder{b: b}
	var a Answer
	if len(b) < 2 {
		return a, fmt.Errorf("cache answer: %d bytes, shorter than its version and flags", len(b))
	}
	if b[0] != answerVersion {
		return a, fmt.Errorf("cache answer: version %d unknown (this build reads %d)", b[0], answerVersion)
	}
	flags := b[1]
	if flags&^flagStream != 0 {
		return a, fmt.Errorf("cache answer: unknown flags %#x", flags)
	}
	a.Stream = flags&flagStream != 0
	d.off = 2
	status := d.uvarint("status")
	if d.err == nil && (status < 100 || status > 999) {
		return a, fmt.Errorf("cache answer: status %d is not an HTTP status", status)
	}
	a.Status = int(status)
	if n := d.count("header names", 2); n > 0 {
		a.Header = make(http.Header, n)
		for range n {
			name := string(d.bytes("header name"))
			if d.err == nil && (name == "" || http.CanonicalHeaderKey(name) != name) {
				// EncodeAnswer writes canonical names; "a" beside "A" would
				// otherwise be one header with values in map order.
				d.fail(fmt.Sprintf("header name %q is not canonical", name))
			}
			if _, dup := a.Header[name]; d.err == nil && dup {
				d.fail(fmt.Sprintf("header %q repeated", name))
			}
			nv := d.count("header values", 1)
			values := make([]string, 0, nv)
			for range nv {
				values = append(values, string(d.bytes("header value")))
			}
			if d.err != nil {
				break
			}
			a.Header[name] = values
		}
	}
	body := d.bytes("body")
	a.Body = body[:len(body):len(body)]
	if a.Stream {
		if n := d.count("chunk lengths", 1); n > 0 {
			a.Chunks = make([]int, 0, n)
			for range n {
				a.Chunks = append(a.Chunks, int(min(d.uvarint("chunk length"), uint64(len(b)+1))))
			}
			if d.err == nil && !chunksCover(a.Chunks, len(a.Body)) {
				d.fail(fmt.Sprintf("chunk lengths do not add up to the body's %d bytes", len(a.Body)))
			}
		}
	}
	if d.err == nil && d.off != len(b) {
		d.fail(fmt.Sprintf("%d bytes after the answer", len(b)-d.off))
	}
	if d.err != nil {
		return Answer{}, d.err
	}
	return a, nil
}

// decoder reads uvarints and length-prefixed strings from b, recording the
// first problem; after one, every read returns zero values.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("cache answer: %s at byte %d", what, d.off)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("truncated or overlong " + what)
		return 0
	}
	d.off += n
	return v
}

// count reads a number of items each at least minSize bytes long, refusing
// one that the rest of b cannot hold, so a corrupt count cannot make the
// caller allocate more than b.
func (d *decoder) count(what string, minSize int) int {
	v := d.uvarint("number of " + what)
	if d.err == nil && v > uint64((len(d.b)-d.off)/minSize) {
		d.fail(fmt.Sprintf("%d %s do not fit in the %d bytes left", v, what, len(d.b)-d.off))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(fmt.Sprintf("%s of %d bytes past the end", what, n))
		return nil
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// AnswerOf is the Answer to store for a buffered (not streamed) result.
// Body aliases res.Body; EncodeAnswer copies it.
func AnswerOf(res *messages.TaskResult) Answer {
	return Answer{Status: res.UpstreamStatus, Header: StoredHeader(res.Header), Body: res.Body}
}

// notStored are the answer headers a stored answer leaves out besides the
// hop-by-hop ones: Content-Length is set when the answer is relayed (the
// body may have been decompressed on the way), Date would be stale, and a
// Set-Cookie belongs to the caller it was sent to, never to whoever asks
// the same question next.
var notStored = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Date": true, "Set-Cookie": true,
}

// StoredHeader is the part of an upstream answer's header the cache
// stores: a copy of h without hop-by-hop headers (RFC 9110 §7.6.1, those
// the Connection header names included), Content-Length, Date and
// Set-Cookie, and without names that have no value. Names are
// canonicalised. nil when nothing is left.
func StoredHeader(h map[string][]string) http.Header {
	var named []string // what Connection names is hop-by-hop too
	for _, v := range http.Header(h).Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				named = append(named, http.CanonicalHeaderKey(name))
			}
		}
	}
	var out http.Header
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if len(vs) == 0 || notStored[ck] || slices.Contains(named, ck) {
			continue
		}
		if out == nil {
			out = make(http.Header, len(h))
		}
		out[ck] = append(out[ck], vs...)
	}
	return out
}

// Result is the succeeded TaskResult a caller gets for a's hit; the caller
// sets its Cache (hit-l1 …) and timings. Each call has its own Header. For
// a stream, Result.Stream replays the body one stored chunk per Read, so
// an SSE relay that flushes after every Read sends the events as the
// upstream did, and Body is nil; otherwise Body is a.Body (shared: read
// only).
func (a Answer) Result(id string) *messages.TaskResult {
	res := &messages.TaskResult{
		ID: id, Status: messages.TaskSucceeded, UpstreamStatus: a.Status, Header: a.Header.Clone(),
	}
	if a.Stream {
		res.Stream = &replay{body: a.Body, chunks: a.Chunks}
	} else {
		res.Body = a.Body
	}
	return res
}

var errReplayClosed = errors.New("cache: read from a closed replay")

// replay reads a stored stream back chunk by chunk. It deliberately has no
// WriteTo: io.Copy would then write the body in one go, and the chunks
// would reach the client as one.
type replay struct {
	body   []byte // what is left to return
	chunks []int  // lengths of the chunks after the current one; read only (shared with the Answer)
	left   int    // bytes left in the current chunk
	closed bool
}

func (r *replay) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errReplayClosed
	}
	if len(r.body) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	for r.left <= 0 && len(r.chunks) > 0 {
		r.left, r.chunks = r.chunks[0], r.chunks[1:]
	}
	if r.left <= 0 { // no lengths left: the rest as one chunk
		r.left = len(r.body)
	}
	n := copy(p, r.body[:min(r.left, len(r.body))])
	r.body, r.left = r.body[n:], r.left-n
	return n, nil
}

func (r *replay) Close() error {
	r.closed = true
	return nil
}
