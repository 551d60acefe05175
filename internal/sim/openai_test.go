package sim

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/internal/clock"
)

// requireKeys fails unless obj has every key (null counts as present): the
// fields the OpenAI SDKs mark required (openai-go `json:"…,required"`).
func requireKeys(t *testing.T, what string, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s: required field %q missing in %v", what, k, obj)
		}
	}
}

// sdkChatCompletion mirrors the typed fields the SDKs decode.
type sdkChatCompletion struct {
	ID                string  `json:"id"`
	Object            string  `json:"object"`
	Created           int64   `json:"created"`
	Model             string  `json:"model"`
	SystemFingerprint *string `json:"system_fingerprint"`
	Choices           []struct {
		Index        int    `json:"index"`
		FinishReason string `json:"finish_reason"`
		Logprobs     any    `json:"logprobs"`
		Message      struct {
			Role    string  `json:"role"`
			Content string  `json:"content"`
			Refusal *string `json:"refusal"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type sdkChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

const chatPath = "/v1/chat/completions"

func TestChatCompletion(t *testing.T) {
	_, url := start(t, quiet())
	c := newClient(t, true)
	resp, body := do(t, c, "POST", url+chatPath, `{
		"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 100, "n": 1,
		"messages": [{"role": "system", "content": "You are terse."},
		             {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there world"}]}]}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var raw map[string]any
	mustDecode(t, body, &raw)
	requireKeys(t, "chat.completion", raw, "id", "object", "created", "model", "choices", "usage", "system_fingerprint")
	choice := raw["choices"].([]any)[0].(map[string]any)
	requireKeys(t, "choice", choice, "index", "message", "logprobs", "finish_reason")
	requireKeys(t, "message", choice["message"].(map[string]any), "role", "content", "refusal")

	var cc sdkChatCompletion
	mustDecode(t, body, &cc)
	if !strings.HasPrefix(cc.ID, "chatcmpl-") || cc.Object != "chat.completion" || cc.Model != "gpt-4o-mini" ||
		cc.Created < time.Now().Add(-time.Hour).Unix() || len(cc.Choices) != 1 {
		t.Fatalf("envelope: %s", body)
	}
	ch := cc.Choices[0]
	if ch.Index != 0 || ch.FinishReason != "stop" || ch.Message.Role != "assistant" ||
		ch.Message.Content != "sim reply to: hello there world" {
		t.Errorf("choice: %+v", ch)
	}
	// Prompt: 3 + 3 words, plus one per message.
	if u := cc.Usage; u.PromptTokens != 8 || u.CompletionTokens != 6 || u.TotalTokens != 14 {
		t.Errorf("usage: %+v", u)
	}

	// Same question, same answer; a new id.
	_, body2 := do(t, c, "POST", url+chatPath, `{"messages": [{"role": "user", "content": "hello there world"}]}`)
	var cc2 sdkChatCompletion
	mustDecode(t, body2, &cc2)
	if cc2.Choices[0].Message.Content != ch.Message.Content || cc2.ID == cc.ID || cc2.Model != "sim-model" {
		t.Errorf("second answer: %s", body2)
	}
}

func TestChatReplyIsTruncated(t *testing.T) {
	_, url := start(t, quiet())
	c := newClient(t, true)
	long := strings.Repeat("word ", 100)
	_, body := do(t, c, "POST", url+chatPath, `{"messages": [{"role": "user", "content": "`+long+`"}]}`)
	var cc sdkChatCompletion
	mustDecode(t, body, &cc)
	if got := cc.Choices[0].Message.Content; countWords(got) != 3+replyWords+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("long prompt reply: %q", got)
	}

	_, body = do(t, c, "POST", url+chatPath, `{"max_completion_tokens": 2, "messages": [{"role": "user", "content": "a b c"}]}`)
	mustDecode(t, body, &cc)
	if ch := cc.Choices[0]; ch.Message.Content != "sim reply" || ch.FinishReason != "length" || cc.Usage.CompletionTokens != 2 {
		t.Errorf("max_completion_tokens 2: %s", body)
	}
}

func TestChatRejectsBadRequests(t *testing.T) {
	_, url := start(t, quiet())
	c := newClient(t, true)
	for _, tc := range []struct{ body, param string }{
		{`{"messages": [`, ""},
		{`[]`, ""},
		{`{"model": "m"}`, "messages"},
		{`{"messages": []}`, "messages"},
		{`{"messages": "hi"}`, "messages"},
		{`{"messages": [{"content": "hi"}]}`, "messages[0].role"},
		{`{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": 5}]}`, "messages[1].content"},
		{`{"stream": "yes", "messages": [{"role": "user", "content": "a"}]}`, "stream"},
		{`{"max_tokens": 0, "messages": [{"role": "user", "content": "a"}]}`, "max_tokens"},
	} {
		resp, body := do(t, c, "POST", url+chatPath, tc.body)
		wantError(t, resp, body, http.StatusBadRequest, "invalid_request_error", tc.param)
	}
	resp, body := do(t, c, "GET", url+chatPath, "")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "invalid_request_error", "")
	if resp.Header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}
	resp, body = do(t, c, "POST", url+"/v1/nothing", "{}")
	wantError(t, resp, body, http.StatusNotFound, "invalid_request_error", "")
}

// TestChatStreamIsIncremental reads the first chunk while the server is
// provably still waiting (on a fake clock) to send the second, then lets
// each interval pass by hand.
func TestChatStreamIsIncremental(t *testing.T) {
	ctx := testCtx(t)
	fc := clock.NewFake(time.Unix(1700000000, 0))
	k := DefaultKnobs()
	k.StreamChunks, k.StreamInterval = 5, 200*time.Millisecond
	_, url := start(t, k, WithClock(fc))
	c := newClient(t, true)

	resp, err := send(ctx, c, "POST", url+chatPath, `{"model": "m", "stream": true, "messages": [{"role": "user", "content": "one two three four five six"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	var chunks []sdkChunk
	for i := range 5 {
		if i > 0 {
			// The server sits on its interval timer: the stream is not over.
			if !fc.WaitForTimers(ctx, 1) {
				t.Fatalf("no interval timer before chunk %d", i)
			}
			if p := fc.Pending(); len(p) != 1 || p[0] != k.StreamInterval {
				t.Fatalf("pending timers %v, want one of %v", p, k.StreamInterval)
			}
			fc.Advance(k.StreamInterval)
		}
		payload, err := readEvent(br)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		var ch sdkChunk
		mustDecode(t, []byte(payload), &ch)
		chunks = append(chunks, ch)
	}
	if payload, err := readEvent(br); err != nil || payload != "[DONE]" {
		t.Fatalf("after the chunks: %q, %v", payload, err)
	}
	if _, err := readEvent(br); err != io.EOF {
		t.Fatalf("after [DONE]: %v, want EOF", err)
	}
	checkChunks(t, chunks, "sim reply to: one two three four five six", "m")
}

// checkChunks verifies the chunk sequence the SDKs assemble.
func checkChunks(t *testing.T, chunks []sdkChunk, wantText, wantModel string) {
	t.Helper()
	var text strings.Builder
	for i, ch := range chunks {
		if !strings.HasPrefix(ch.ID, "chatcmpl-") || ch.ID != chunks[0].ID || ch.Object != "chat.completion.chunk" ||
			ch.Model != wantModel || ch.Created == 0 || len(ch.Choices) != 1 || ch.Choices[0].Index != 0 {
			t.Fatalf("chunk %d envelope: %+v", i, ch)
		}
		d := ch.Choices[0]
		if (i == 0) != (d.Delta.Role == "assistant") {
			t.Errorf("chunk %d role %q", i, d.Delta.Role)
		}
		last := i == len(chunks)-1
		if last != (d.FinishReason != nil) || (last && *d.FinishReason != "stop") {
			t.Errorf("chunk %d finish_reason %v", i, d.FinishReason)
		}
		if d.Delta.Content != nil {
			text.WriteString(*d.Delta.Content)
		}
	}
	if text.String() != wantText {
		t.Errorf("streamed text %q, want %q", text.String(), wantText)
	}
}

func TestChatStreamShapes(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 12} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			k := quiet()
			k.StreamChunks = n
			_, url := start(t, k)
			c := newClient(t, true)
			resp, err := send(testCtx(t), c, "POST", url+chatPath,
				`{"stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "a b c d"}]}`)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var chunks []sdkChunk
			var usageChunk *sdkChunk
			for {
				payload, err := readEvent(br)
				if err != nil {
					t.Fatalf("stream ended without [DONE]: %v", err)
				}
				if payload == "[DONE]" {
					break
				}
				var raw map[string]any
				mustDecode(t, []byte(payload), &raw)
				requireKeys(t, "chunk", raw, "id", "object", "created", "model", "choices", "usage")
				var ch sdkChunk
				mustDecode(t, []byte(payload), &ch)
				if len(ch.Choices) == 0 {
					usageChunk = &ch
					continue
				}
				requireKeys(t, "chunk choice", raw["choices"].([]any)[0].(map[string]any), "index", "delta", "finish_reason")
				if usageChunk != nil || ch.Usage != nil {
					t.Fatalf("usage must be null until the last chunk: %s", payload)
				}
				chunks = append(chunks, ch)
			}
			if len(chunks) != n {
				t.Fatalf("%d chunks, want %d", len(chunks), n)
			}
			checkChunks(t, chunks, "sim reply to: a b c d", "sim-model")
			if usageChunk == nil || usageChunk.Usage == nil || usageChunk.Usage.PromptTokens != 5 ||
				usageChunk.Usage.CompletionTokens != 7 || usageChunk.Usage.TotalTokens != 12 {
				t.Errorf("usage chunk: %+v", usageChunk)
			}
		})
	}
}

func TestChatStreamTakesTheIntervals(t *testing.T) {
	k := DefaultKnobs()
	k.StreamChunks, k.StreamInterval = 5, 20*time.Millisecond
	_, url := start(t, k)
	began := time.Now()
	resp, body := do(t, newClient(t, true), "POST", url+chatPath, `{"stream": true, "messages": [{"role": "user", "content": "x"}]}`)
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if took := time.Since(began); took < 4*k.StreamInterval {
		t.Errorf("stream took %v, at least %v expected", took, 4*k.StreamInterval)
	}
	if n := strings.Count(string(body), "chat.completion.chunk"); n != 5 {
		t.Errorf("%d chunks", n)
	}
	if strings.Contains(string(body), `"usage"`) {
		t.Error("usage sent without stream_options.include_usage")
	}
}

type sdkEmbeddings struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func embed(t *testing.T, c *http.Client, url, body string) sdkEmbeddings {
	t.Helper()
	resp, b := do(t, c, "POST", url+"/v1/embeddings", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", body, resp.StatusCode, b)
	}
	var raw map[string]any
	mustDecode(t, b, &raw)
	requireKeys(t, "embeddings", raw, "object", "data", "model", "usage")
	for _, d := range raw["data"].([]any) {
		requireKeys(t, "embedding", d.(map[string]any), "object", "index", "embedding")
	}
	var e sdkEmbeddings
	mustDecode(t, b, &e)
	if e.Object != "list" {
		t.Errorf("object %q", e.Object)
	}
	for i, d := range e.Data {
		if d.Object != "embedding" || d.Index != i {
			t.Errorf("data[%d]: object %q index %d", i, d.Object, d.Index)
		}
	}
	return e
}

func floats(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	var v []float32
	mustDecode(t, raw, &v)
	return v
}

func TestEmbeddings(t *testing.T) {
	s, url := start(t, quiet())
	c := newClient(t, true)

	one := embed(t, c, url, `{"model": "text-embedding-3-small", "input": "hello world"}`)
	if len(one.Data) != 1 || one.Model != "text-embedding-3-small" || one.Usage.PromptTokens != 2 || one.Usage.TotalTokens != 2 {
		t.Fatalf("single input: %+v", one)
	}
	hello := floats(t, one.Data[0].Embedding)
	if len(hello) != DefaultDimensions {
		t.Fatalf("%d dimensions", len(hello))
	}
	var norm float64
	for _, f := range hello {
		norm += float64(f) * float64(f)
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Errorf("norm² = %v, want 1", norm)
	}

	many := embed(t, c, url, `{"input": ["a", "hello world", "b", "a"], "dimensions": 16}`)
	if len(many.Data) != 4 || many.Model != "sim-embed" {
		t.Fatalf("array input: %+v", many)
	}
	vs := make([][]float32, 4)
	for i := range vs {
		vs[i] = floats(t, many.Data[i].Embedding)
		if len(vs[i]) != 16 {
			t.Fatalf("data[%d] has %d dimensions", i, len(vs[i]))
		}
	}
	if fmt.Sprint(vs[0]) != fmt.Sprint(vs[3]) || fmt.Sprint(vs[0]) == fmt.Sprint(vs[2]) {
		t.Error("same text must give the same vector, different text a different one")
	}
	if fmt.Sprint(vs[1]) != fmt.Sprint(Vector("hello world", 16)) {
		t.Error("vector differs from Vector()")
	}

	// base64: little-endian float32, the same numbers as the float form.
	b64 := embed(t, c, url, `{"input": ["hello world"], "encoding_format": "base64"}`)
	var enc string
	mustDecode(t, b64.Data[0].Embedding, &enc)
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw) != 4*DefaultDimensions {
		t.Fatalf("base64 %q: %v", enc, err)
	}
	for i := range DefaultDimensions {
		if f := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); f != hello[i] {
			t.Fatalf("base64 value %d = %v, float form %v", i, f, hello[i])
		}
	}

	// Token arrays, as LangChain's OpenAIEmbeddings sends them.
	tok := embed(t, c, url, `{"input": [[1, 2, 3], [4, 5]]}`)
	if len(tok.Data) != 2 || tok.Usage.PromptTokens != 5 {
		t.Errorf("token arrays: %+v", tok)
	}
	flat := embed(t, c, url, `{"input": [1, 2, 3]}`)
	if len(flat.Data) != 1 || fmt.Sprint(floats(t, flat.Data[0].Embedding)) != fmt.Sprint(floats(t, tok.Data[0].Embedding)) {
		t.Errorf("a flat token array is one input, the same as [[1,2,3]]: %+v", flat)
	}

	st := s.Stats()
	if st.EmbeddingCalls != 5 || st.EmbeddingInputs != 1+4+1+2+1 || fmt.Sprint(st.EmbeddingInputCounts) != "[1 4 1 2 1]" {
		t.Errorf("stats: %+v", st)
	}
}

func TestEmbeddingsRejectBadRequests(t *testing.T) {
	s, url := start(t, quiet())
	c := newClient(t, true)
	tooMany := `{"input": [` + strings.Repeat(`"x",`, MaxEmbeddingBatch) + `"x"]}`
	for _, tc := range []struct{ body, param string }{
		{`{"model": "m"}`, "input"},
		{`{"input": null}`, "input"},
		{`{"input": []}`, "input"},
		{`{"input": ["a", 1]}`, "input"},
		{`{"input": {"a": 1}}`, "input"},
		{tooMany, "input"},
		{`{"input": "a", "dimensions": 0}`, "dimensions"},
		{`{"input": "a", "dimensions": 4097}`, "dimensions"},
		{`{"input": "a", "dimensions": "8"}`, "dimensions"},
		{`{"input": "a", "encoding_format": "hex"}`, "encoding_format"},
		{`{"input": "a"`, ""},
	} {
		resp, body := do(t, c, "POST", url+"/v1/embeddings", tc.body)
		wantError(t, resp, body, http.StatusBadRequest, "invalid_request_error", tc.param)
	}
	if st := s.Stats(); st.EmbeddingCalls != 0 || st.Statuses[400] != 11 {
		t.Errorf("rejected calls must not count as embedding calls: %+v", st)
	}
}

func TestModels(t *testing.T) {
	_, url := start(t, quiet())
	resp, body := do(t, newClient(t, true), "GET", url+"/v1/models", "")
	var list struct {
		Object string           `json:"object"`
		Data   []map[string]any `json:"data"`
	}
	mustDecode(t, body, &list)
	if resp.StatusCode != http.StatusOK || list.Object != "list" || len(list.Data) != 2 ||
		list.Data[0]["id"] != "sim-model" || list.Data[1]["id"] != "sim-embed" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	for _, m := range list.Data {
		requireKeys(t, "model", m, "id", "object", "created", "owned_by")
		if m["object"] != "model" || m["owned_by"] != "deersim" {
			t.Errorf("model %v", m)
		}
	}

	_, url = start(t, quiet(), WithModels("a", "b", "c"))
	_, body = do(t, newClient(t, true), "GET", url+"/v1/models", "")
	mustDecode(t, body, &list)
	if len(list.Data) != 3 || list.Data[2]["id"] != "c" {
		t.Errorf("WithModels: %s", body)
	}
}

func TestSearch(t *testing.T) {
	_, url := start(t, quiet())
	c := newClient(t, true)
	type result struct {
		Title   string  `json:"title"`
		URL     string  `json:"url"`
		Content string  `json:"content"`
		Score   float64 `json:"score"`
	}
	var a, b, g struct {
		Query   string   `json:"query"`
		Results []result `json:"results"`
	}
	_, body := do(t, c, "POST", url+"/search", `{"query": "deer migration"}`)
	mustDecode(t, body, &a)
	if a.Query != "deer migration" || len(a.Results) != DefaultSearchResults {
		t.Fatalf("search: %s", body)
	}
	for i, r := range a.Results {
		if r.Title == "" || !strings.HasPrefix(r.URL, "https://") || !strings.Contains(r.Content, "deer migration") ||
			r.Score <= 0 || r.Score > 1 || (i > 0 && r.Score >= a.Results[i-1].Score) {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	_, body = do(t, c, "POST", url+"/search", `{"query": "deer migration", "num_results": 3}`)
	mustDecode(t, body, &b)
	if len(b.Results) != 3 || b.Results[2] != a.Results[2] {
		t.Errorf("num_results 3 must give the first three of the same results: %s", body)
	}
	_, body = do(t, c, "GET", url+"/search?q=deer+migration&max_results=2", "")
	mustDecode(t, body, &g)
	if len(g.Results) != 2 || g.Results[0] != a.Results[0] {
		t.Errorf("GET: %s", body)
	}
	_, body = do(t, c, "POST", url+"/search", `{"query": "other"}`)
	mustDecode(t, body, &b)
	if b.Results[0].URL == a.Results[0].URL {
		t.Error("different queries must give different results")
	}

	for _, tc := range []struct{ method, path, body, param string }{
		{"POST", "/search", `{}`, "query"},
		{"POST", "/search", `{"query": "  "}`, "query"},
		{"POST", "/search", `{"query": "q", "max_results": 0}`, "max_results"},
		{"POST", "/search", `{"query": "q", "num_results": 51}`, "num_results"},
		{"GET", "/search", ``, "query"},
		{"GET", "/search?q=x&num_results=many", ``, "num_results"},
	} {
		resp, body := do(t, c, tc.method, url+tc.path, tc.body)
		wantError(t, resp, body, http.StatusBadRequest, "invalid_request_error", tc.param)
	}
}
