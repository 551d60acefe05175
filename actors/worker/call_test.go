package worker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/messages"
)

func TestFailureClassification(t *testing.T) {
	task := &messages.Task{ID: "t1", Upstream: "sim"}
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithTimeout(live, 0)
	defer cancel2()
	<-expired.Done()
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		code string
		msg  string
	}{
		{"cancelled by the caller", cancelled, context.Canceled, messages.CodeCancelled, "the task was cancelled"},
		{"a Canceled error without a cancelled context is the upstream's", live, context.Canceled, messages.CodeUpstream, "calling upstream sim: context canceled"},
		{"the deadline passed", expired, context.DeadlineExceeded, messages.CodeTimeout, "the upstream did not answer in time: context deadline exceeded"},
		{"an error after the deadline passed", expired, errors.New("read: connection reset"), messages.CodeTimeout, "connection reset"},
		{"the upstream failed", live, errors.New("dial tcp: refused"), messages.CodeUpstream, "calling upstream sim: dial tcp: refused"},
		{"no error, no answer", live, nil, messages.CodeUpstream, "the call ended without an answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := failure(task, c.ctx, c.err)
			if res.ID != "t1" || res.Status != messages.TaskFailed || res.Err == nil || res.Err.Code != c.code || !strings.Contains(res.Err.Message, c.msg) {
				t.Fatalf("failure = %+v %+v, want %s containing %q", res, res.Err, c.code, c.msg)
			}
		})
	}
}

func TestFailedSaysWhatTheCacheDid(t *testing.T) {
	for _, c := range []struct{ task, want string }{
		{"", messages.CacheMiss},
		{messages.CacheAuto, messages.CacheMiss},
		{messages.CacheRefresh, messages.CacheMiss},
		{messages.CacheNoStore, messages.CacheMiss},
		{messages.CacheBypass, messages.CacheBypass},
	} {
		res := Failed(&messages.Task{ID: "t", Cache: c.task}, messages.CodeTimeout, "slow")
		if res.Cache != c.want || res.Status != messages.TaskFailed || res.Err.Code != messages.CodeTimeout || res.Err.Message != "slow" || res.Attempts != 0 {
			t.Errorf("Cache %q: %+v %+v, want cache %q", c.task, res, res.Err, c.want)
		}
	}
}

func TestRequest(t *testing.T) {
	t.Setenv("DEER_TEST_KEY", "upstream-key")
	for _, c := range []struct {
		name     string
		task     messages.Task
		keyEnv   string
		method   string
		url      string
		auth     string
		ctype    string
		wantBody string
	}{
		{
			name:   "defaults: POST, JSON, the caller's credential dropped",
			task:   messages.Task{Path: "/v1/chat", Body: []byte(`{}`), Header: http.Header{"Authorization": {"Bearer caller"}, "X-Trace": {"1"}}},
			method: http.MethodPost, url: "http://up:1/v1/chat", ctype: "application/json", wantBody: "{}",
		},
		{
			name: "the upstream's key", keyEnv: "DEER_TEST_KEY",
			task:   messages.Task{Method: http.MethodGet, Path: "/models", Header: http.Header{"Authorization": {"Bearer caller"}}},
			method: http.MethodGet, url: "http://up:1/models", auth: "Bearer upstream-key",
		},
		{
			name: "an unset key variable sends none", keyEnv: "DEER_TEST_KEY_UNSET",
			task:   messages.Task{Path: "/x", Body: []byte("a=b"), Header: http.Header{"Content-Type": {"text/plain"}}},
			method: http.MethodPost, url: "http://up:1/x", ctype: "text/plain", wantBody: "a=b",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			call := &call{task: &c.task, up: conf.Upstream{BaseURL: "http://up:1/", APIKeyEnv: c.keyEnv}}
			req, err := call.request(context.Background(), "http://up:1/")
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != c.method || req.URL.String() != c.url || req.Header.Get("Authorization") != c.auth || req.Header.Get("Content-Type") != c.ctype {
				t.Fatalf("%s %s auth %q type %q, want %s %s %q %q", req.Method, req.URL, req.Header.Get("Authorization"), req.Header.Get("Content-Type"), c.method, c.url, c.auth, c.ctype)
			}
			if v := http.Header(c.task.Header).Get("X-Trace"); v != "" && req.Header.Get("X-Trace") != v {
				t.Errorf("header X-Trace not copied: %v", req.Header)
			}
			if v := http.Header(c.task.Header).Get("Authorization"); v != "" && v != "Bearer caller" {
				t.Errorf("the task's own headers were changed: %v", c.task.Header)
			}
			var body []byte
			if req.Body != nil {
				body, _ = io.ReadAll(req.Body)
			}
			if string(body) != c.wantBody {
				t.Errorf("body %q, want %q", body, c.wantBody)
			}
		})
	}
}

func TestStreamBodyRunsOnCloseOnce(t *testing.T) {
	closes := 0
	s := &streamBody{ReadCloser: io.NopCloser(strings.NewReader("data")), onClose: func() { closes++ }}
	if b, _ := io.ReadAll(s); string(b) != "data" {
		t.Fatalf("read %q", b)
	}
	s.Close()
	s.Close()
	if closes != 1 {
		t.Fatalf("onClose ran %d times, want 1", closes)
	}
}

func TestReadAll(t *testing.T) {
	for _, c := range []struct {
		body string
		size int64
	}{
		{"", 0}, {"", -1}, {"abc", 3}, {"abc", -1}, {"abcdef", 3}, {"ab", 3},
		{strings.Repeat("x", 5000), 5000}, {strings.Repeat("x", 5000), 10},
	} {
		got, err := readAll(iotest.OneByteReader(strings.NewReader(c.body)), c.size)
		if err != nil || string(got) != c.body {
			t.Errorf("readAll(%d bytes, size %d) = %d bytes, %v", len(c.body), c.size, len(got), err)
		}
	}
	if _, err := readAll(iotest.ErrReader(io.ErrUnexpectedEOF), 3); err != io.ErrUnexpectedEOF {
		t.Errorf("error %v, want io.ErrUnexpectedEOF", err)
	}
}
