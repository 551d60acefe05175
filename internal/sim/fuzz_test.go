package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzBody sends body to path through the handler (no network, no faults)
// and checks that any input gets a well-formed answer: 200 or a 4xx in the
// OpenAI error shape.
func fuzzBody(f *testing.F, path string, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	s := New(quiet())
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		switch {
		case w.Code == http.StatusOK:
		case w.Code >= 400 && w.Code < 500:
			var e openAIError
			mustDecode(t, w.Body.Bytes(), &e)
			if e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		}
	})
}

func FuzzChat(f *testing.F) {
	fuzzBody(f, chatPath, chatBody, `{"stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}`,
		`{"max_tokens": 1, "messages": [{"role": "user", "content": null}]}`, `{"messages": 1}`, `[]`, ``)
}

func FuzzEmbeddings(f *testing.F) {
	fuzzBody(f, "/v1/embeddings", `{"input": "a"}`, `{"input": ["a", "b"], "dimensions": 3, "encoding_format": "base64"}`,
		`{"input": [[1, 2], [3]]}`, `{"input": [1, 2]}`, `{"input": []}`, `{"input": [null]}`)
}

func FuzzSearch(f *testing.F) {
	fuzzBody(f, "/search", `{"query": "q"}`, `{"query": "q", "num_results": 50}`, `{"query": 1}`)
}

func FuzzControl(f *testing.F) {
	fuzzBody(f, "/_control", `{"latency": "300ms", "error_rate": 0.1}`, `{"stream_chunks": 3, "stream_interval": 0.01}`,
		`{"capacity": 1e308}`, `{"retry_after": -1}`, `{}`)
}
