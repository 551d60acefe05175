package cache

import (
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/deer-runtime/deer/messages"
)

func TestAnswerRoundTrip(t *testing.T) {
	sse := "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n"
	for _, tc := range []struct {
		name string
		in   Answer
		want Answer // what decoding the encoded in gives
	}{
		{"buffered JSON",
			Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"a", "b"}}, Body: []byte(`{"ok":true}`)},
			Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"a", "b"}}, Body: []byte(`{"ok":true}`)}},
		{"no header, empty body", Answer{Status: 204}, Answer{Status: 204, Body: []byte{}}},
		{"binary body", Answer{Status: 200, Body: []byte{0, 0xff, 1, '\n'}}, Answer{Status: 200, Body: []byte{0, 0xff, 1, '\n'}}},
		{"stream with chunks",
			Answer{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: []byte(sse), Chunks: []int{14, 14, 16}, Stream: true},
			Answer{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: []byte(sse), Chunks: []int{14, 14, 16}, Stream: true}},
		{"stream without chunks", Answer{Status: 200, Body: []byte(sse), Stream: true}, Answer{Status: 200, Body: []byte(sse), Stream: true}},
		{"chunks not adding up are dropped", Answer{Status: 200, Body: []byte(sse), Chunks: []int{14, 14}, Stream: true},
			Answer{Status: 200, Body: []byte(sse), Stream: true}},
		{"a zero chunk drops them all", Answer{Status: 200, Body: []byte("ab"), Chunks: []int{0, 2}, Stream: true},
			Answer{Status: 200, Body: []byte("ab"), Stream: true}},
		{"chunks of a buffered answer are dropped", Answer{Status: 200, Body: []byte("ab"), Chunks: []int{1, 1}},
			Answer{Status: 200, Body: []byte("ab")}},
		{"headers never stored are dropped",
			Answer{Status: 200, Header: http.Header{
				"Content-Type": {"application/json"}, "Content-Length": {"11"}, "Date": {"Mon, 01 Jan 2026 00:00:00 GMT"},
				"Set-Cookie": {"session=secret"}, "Connection": {"keep-alive, X-Hop"}, "X-Hop": {"1"}, "Keep-Alive": {"timeout=5"},
				"Transfer-Encoding": {"chunked"}, "x-lower": {"kept"},
			}, Body: []byte(`{"ok":true}`)},
			Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Lower": {"kept"}}, Body: []byte(`{"ok":true}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeAnswer(tc.in)
			got, err := DecodeAnswer(enc)
			if err != nil {
				t.Fatalf("DecodeAnswer: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded %+v\nwant    %+v", got, tc.want)
			}
			if again := EncodeAnswer(got); !bytes.Equal(again, enc) {
				t.Errorf("re-encoding changed the bytes:\n%x\n%x", enc, again)
			}
		})
	}
}

func TestEncodeAnswerIsDeterministic(t *testing.T) {
	h := http.Header{}
	for _, k := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		h.Set("X-"+k, k)
	}
	first := EncodeAnswer(Answer{Status: 200, Header: h, Body: []byte("x")})
	for range 20 { // map order varies from run to run
		if got := EncodeAnswer(Answer{Status: 200, Header: h.Clone(), Body: []byte("x")}); !bytes.Equal(got, first) {
			t.Fatalf("two encodings of one answer differ:\n%x\n%x", first, got)
		}
	}
}

func TestDecodeAnswerNamesWhatIsWrong(t *testing.T) {
	good := EncodeAnswer(Answer{Status: 200, Header: http.Header{"A": {"b"}}, Body: []byte("body"), Chunks: []int{2, 2}, Stream: true})
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than its version"},
		{"unknown version", append([]byte{9}, good[1:]...), "version 9 unknown"},
		{"unknown flags", append([]byte{1, 0x80}, good[2:]...), "unknown flags"},
		{"status 0", EncodeAnswer(Answer{Status: 0}), "status 0 is not an HTTP status"},
		{"status 1000", EncodeAnswer(Answer{Status: 1000}), "status 1000"},
		{"truncated", good[:len(good)-3], "cache answer:"},
		{"trailing bytes", append(bytes.Clone(good), 0), "1 bytes after the answer"},
		{"huge header count", []byte{1, 0, 200, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, "header names do not fit"},
		{"body past the end", []byte{1, 0, 200, 1, 0, 50, 'x'}, "body of 50 bytes past the end"},
		{"header name not canonical", []byte{1, 0, 200, 1, 1, 1, 'a', 1, 1, 'x', 0}, `header name "a" is not canonical`},
		{"chunks not adding up", []byte{1, 1, 200, 1, 0, 2, 'a', 'b', 2, 1, 2}, "chunk lengths do not add up"},
		{"overlong varint", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "overlong status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := DecodeAnswer(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeAnswer = %+v, %v; want an error containing %q", a, err, tc.want)
			}
		})
	}
}

// FuzzDecodeAnswer: any bytes decode to an answer or an error, never a
// panic; what decodes encodes back to bytes that decode to the same.
func FuzzDecodeAnswer(f *testing.F) {
	f.Add(EncodeAnswer(Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"a":1}`)}))
	f.Add(EncodeAnswer(Answer{Status: 200, Body: []byte("data: 1\n\ndata: 2\n\n"), Chunks: []int{9, 9}, Stream: true}))
	f.Add([]byte{1, 0, 200, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAnswer(b)
		if err != nil {
			return
		}
		again, err := DecodeAnswer(EncodeAnswer(a))
		if err != nil {
			t.Fatalf("%x decodes, its re-encoding does not: %v", b, err)
		}
		if !reflect.DeepEqual(StoredHeader(a.Header), again.Header) || !bytes.Equal(a.Body, again.Body) ||
			a.Status != again.Status || a.Stream != again.Stream || !reflect.DeepEqual(a.Chunks, again.Chunks) {
			t.Fatalf("%x: decoded %+v, after a round trip %+v", b, a, again)
		}
		if a.Stream {
			if got := readAll(t, a.Result("x").Stream); !bytes.Equal(got, a.Body) {
				t.Fatalf("replay %q, body %q", got, a.Body)
			}
		}
	})
}

// TestStreamReplayIsByteIdenticalChunkByChunk: a stored stream comes back
// as the same bytes, one stored chunk per Read (split only by a short
// buffer), so an SSE relay flushes the events as the upstream sent them.
func TestStreamReplayIsByteIdenticalChunkByChunk(t *testing.T) {
	chunks := []string{"data: {\"delta\":\"He\"}\n\n", "data: {\"delta\":\"llo\"}\n\n", "data: [DONE]\n\n"}
	var body []byte
	var lengths []int
	for _, c := range chunks {
		body = append(body, c...)
		lengths = append(lengths, len(c))
	}
	stored, err := DecodeAnswer(EncodeAnswer(Answer{
		Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: body, Chunks: lengths, Stream: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	res := stored.Result("task_1")
	if res.ID != "task_1" || res.Status != messages.TaskSucceeded || res.UpstreamStatus != 200 || res.Body != nil || res.Stream == nil {
		t.Fatalf("result %+v: want succeeded, 200, a stream and no body", res)
	}
	if ct := http.Header(res.Header).Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	buf := make([]byte, 32<<10) // the relay's buffer
	var reads []string
	for {
		n, err := res.Stream.Read(buf)
		if n > 0 {
			reads = append(reads, string(buf[:n]))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(reads, chunks) {
		t.Errorf("reads %q\nwant  %q", reads, chunks)
	}
	if err := res.Stream.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := res.Stream.Read(buf); err == nil {
		t.Errorf("a read after Close succeeded")
	}

	// A buffer shorter than a chunk splits it; the next read finishes it.
	small := stored.Result("task_2").Stream
	var got []string
	for {
		b := make([]byte, 16)
		n, err := small.Read(b)
		if n > 0 {
			got = append(got, string(b[:n]))
		}
		if err != nil {
			break
		}
	}
	want := []string{chunks[0][:16], chunks[0][16:], chunks[1][:16], chunks[1][16:], chunks[2]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("16-byte reads %q\nwant %q", got, want)
	}

	// Each replay is independent; the stored answer is not consumed.
	if a, b := readAll(t, stored.Result("a").Stream), readAll(t, stored.Result("b").Stream); !bytes.Equal(a, body) || !bytes.Equal(b, body) {
		t.Errorf("two replays gave %q and %q", a, b)
	}
}

func TestAnswerOfAndResult(t *testing.T) {
	res := &messages.TaskResult{
		ID: "task_1", Status: messages.TaskSucceeded, UpstreamStatus: 200, Cache: messages.CacheMiss, Attempts: 2,
		Header: map[string][]string{"Content-Type": {"application/json"}, "Date": {"today"}, "Set-Cookie": {"s=1"}, "Content-Length": {"7"}},
		Body:   []byte(`{"a":1}`),
	}
	a := AnswerOf(res)
	want := Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"a":1}`)}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("AnswerOf = %+v, want %+v", a, want)
	}
	stored, err := DecodeAnswer(EncodeAnswer(a))
	if err != nil {
		t.Fatal(err)
	}
	got := stored.Result("task_2")
	if got.ID != "task_2" || got.Status != messages.TaskSucceeded || got.UpstreamStatus != 200 || got.Stream != nil ||
		string(got.Body) != `{"a":1}` || !reflect.DeepEqual(got.Header, map[string][]string{"Content-Type": {"application/json"}}) {
		t.Errorf("Result = %+v", got)
	}
	// Each result has its own header: a relay that edits one leaves the
	// stored answer and the other callers' results alone.
	got.Header["Content-Type"][0] = "edited"
	if ct := stored.Result("task_3").Header["Content-Type"][0]; ct != "application/json" {
		t.Errorf("editing one result's header changed another's: %q", ct)
	}
}

func readAll(t *testing.T, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
