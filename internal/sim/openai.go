package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// OpenAI error types.
const (
	typeInvalidRequest = "invalid_request_error"
	typeServerError    = "server_error"
	typeRateLimited    = "rate_limit_exceeded"
)

// Embedding limits, as OpenAI's.
const (
	DefaultDimensions = 8
	MaxDimensions     = 4096
	MaxEmbeddingBatch = 2048
	// MaxInputTokens is the most tokens (words, here) one embedding input
	// may have, as OpenAI's 8192: a longer one fails the whole request.
	MaxInputTokens = 8192
)

// replyWords is how many words of the prompt a reply quotes.
const replyWords = 24

// modelsCreated is the fixed creation time of the listed models, so that
// /v1/models answers the same bytes every time.
const modelsCreated = 1700000000

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// writeError answers in OpenAI's error shape; empty param and code are null.
func writeError(w http.ResponseWriter, status int, typ, param, code, msg string) {
	e := apiError{Message: msg, Type: typ}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	writeJSON(w, status, struct {
		Error apiError `json:"error"`
	}{e})
}

func writeRateLimited(w http.ResponseWriter, retryAfter int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeError(w, http.StatusTooManyRequests, typeRateLimited, "", "rate_limit_exceeded", msg)
}

// writeForced answers a status forced by X-Sim-Status.
func writeForced(w http.ResponseWriter, status, retryAfter int) {
	msg := fmt.Sprintf("Simulated %d %s (X-Sim-Status).", status, http.StatusText(status))
	switch {
	case status == http.StatusTooManyRequests:
		writeRateLimited(w, retryAfter, msg)
	case status >= 500:
		writeError(w, status, typeServerError, "", "", msg)
	default:
		writeError(w, status, typeInvalidRequest, "", "", msg)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := mustJSON(v)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeBody decodes a JSON object into v, or answers 400 naming the field
// of a type mismatch and returns false.
func decodeBody(w http.ResponseWriter, body []byte, v any) bool {
	err := json.Unmarshal(body, v)
	if err == nil {
		return true
	}
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field != "":
		writeError(w, http.StatusBadRequest, typeInvalidRequest, te.Field, "invalid_type",
			fmt.Sprintf("Invalid type for '%s': got a JSON %s, expected %s.", te.Field, te.Value, jsonKind(te.Type.Kind().String())))
	case errors.As(err, &te):
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "", "invalid_type", "The request body must be a JSON object.")
	default:
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "", "invalid_json",
			"We could not parse the JSON body of your request: "+err.Error())
	}
	return false
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "float64", "float32":
		return "a number"
	default:
		return "an integer"
	}
}

// --- chat completions ---

type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint *string      `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             usage        `json:"usage"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      assistantMsg    `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type assistantMsg struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint *string       `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is absent without stream_options.include_usage; with it, null on
	// every chunk but the last, which has empty choices (OpenAI's form).
	Usage any `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int             `json:"index"`
	Delta        chunkDelta      `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chunkDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

var jsonNull = json.RawMessage("null")

// chat answers POST /v1/chat/completions.
func (s *Simulator) chat(w http.ResponseWriter, r *http.Request, body []byte) {
	var req chatRequest
	if !decodeBody(w, body, &req) {
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "messages", "missing_required_parameter",
			"'messages' is required and must be a non-empty array.")
		return
	}
	var prompt string
	promptTokens := 0
	for i, m := range req.Messages {
		if m.Role == "" {
			param := fmt.Sprintf("messages[%d].role", i)
			writeError(w, http.StatusBadRequest, typeInvalidRequest, param, "missing_required_parameter",
				fmt.Sprintf("'%s' is required.", param))
			return
		}
		text, ok := contentText(m.Content)
		if !ok {
			param := fmt.Sprintf("messages[%d].content", i)
			writeError(w, http.StatusBadRequest, typeInvalidRequest, param, "invalid_type",
				fmt.Sprintf("'%s' must be a string, an array of content parts or null.", param))
			return
		}
		promptTokens += countWords(text) + 1 // +1: a message costs something even when empty
		if m.Role == "user" || prompt == "" {
			prompt = text
		}
	}
	maxTokens, param := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		maxTokens, param = req.MaxCompletionTokens, "max_completion_tokens"
	}
	if maxTokens != nil && *maxTokens < 1 {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, param, "invalid_value",
			fmt.Sprintf("'%s' must be at least 1, got %d.", param, *maxTokens))
		return
	}
	model := req.Model
	if model == "" {
		model = "sim-model"
	}

	text, finish := reply(prompt), "stop"
	if words := strings.Fields(text); maxTokens != nil && len(words) > *maxTokens {
		text, finish = strings.Join(words[:*maxTokens], " "), "length"
	}
	completion := countWords(text)
	u := usage{PromptTokens: promptTokens, CompletionTokens: completion, TotalTokens: promptTokens + completion}
	id := s.newID("chatcmpl-")
	created := s.clock.Now().Unix()

	if req.Stream {
		includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		s.streamChat(w, r, chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model},
			text, finish, u, includeUsage)
		return
	}
	writeJSON(w, http.StatusOK, chatCompletion{
		ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: []chatChoice{{
			Message:  assistantMsg{Role: "assistant", Content: text},
			Logprobs: jsonNull, FinishReason: finish,
		}},
		Usage: u,
	})
}

// streamChat writes the answer as server-sent events: Knobs.StreamChunks
// chat.completion.chunk events stream_interval apart, each flushed — the
// role, then the content in pieces, then the finish reason (with fewer than
// three chunks these share events) — then the usage chunk if asked, then
// "data: [DONE]".
func (s *Simulator) streamChat(w http.ResponseWriter, r *http.Request, head chatChunk, text, finish string, u usage, includeUsage bool) {
	k := s.Knobs()
	if includeUsage {
		head.Usage = jsonNull
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(payload []byte) bool {
		var buf bytes.Buffer
		buf.Grow(len(payload) + 8)
		buf.WriteString("data: ")
		buf.Write(payload)
		buf.WriteString("\n\n")
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for i, c := range streamChoices(text, finish, k.StreamChunks) {
		if i > 0 && s.wait(r.Context(), k.StreamInterval) != nil {
			return // the client went away
		}
		chunk := head
		chunk.Choices = []chunkChoice{c}
		if !send(mustJSON(chunk)) {
			return
		}
	}
	if includeUsage {
		chunk := head
		chunk.Choices, chunk.Usage = []chunkChoice{}, u
		if !send(mustJSON(chunk)) {
			return
		}
	}
	send([]byte("[DONE]"))
}

// streamChoices splits text over n chunk choices.
func streamChoices(text, finish string, n int) []chunkChoice {
	choice := func(d chunkDelta, finish *string) chunkChoice {
		return chunkChoice{Delta: d, Logprobs: jsonNull, FinishReason: finish}
	}
	switch n {
	case 1:
		return []chunkChoice{choice(chunkDelta{Role: "assistant", Content: &text}, &finish)}
	case 2:
		return []chunkChoice{choice(chunkDelta{Role: "assistant", Content: &text}, nil), choice(chunkDelta{}, &finish)}
	}
	empty := ""
	out := make([]chunkChoice, 0, n)
	out = append(out, choice(chunkDelta{Role: "assistant", Content: &empty}, nil))
	for _, p := range splitPieces(text, n-2) {
		out = append(out, choice(chunkDelta{Content: &p}, nil))
	}
	return append(out, choice(chunkDelta{}, &finish))
}

// splitPieces cuts text at spaces into exactly n pieces (some empty when
// there are fewer words than pieces) that concatenate back to text.
func splitPieces(text string, n int) []string {
	words := strings.SplitAfter(text, " ")
	pieces := make([]string, n)
	for i := range pieces {
		pieces[i] = strings.Join(words[i*len(words)/n:(i+1)*len(words)/n], "")
	}
	return pieces
}

// contentText extracts the text of a message content: a string, an array of
// parts (the text parts count), or null.
func contentText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || bytes.Equal(raw, jsonNull) {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, " "), true
}

// reply is the deterministic answer to a prompt: it quotes the prompt's first
// replyWords words.
func reply(prompt string) string {
	words := strings.Fields(prompt)
	if len(words) > replyWords {
		words = append(words[:replyWords:replyWords], "…")
	}
	if len(words) == 0 {
		return "sim reply to: (empty)"
	}
	return "sim reply to: " + strings.Join(words, " ")
}

// countWords is the simulator's token count: words, roughly.
func countWords(s string) int { return len(strings.Fields(s)) }

func (s *Simulator) newID(prefix string) string {
	x := s.ids.Add(1) + s.idSalt
	return fmt.Sprintf("%s%016x", prefix, splitmix64(&x))
}

// --- embeddings ---

type embeddingRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

type embeddingList struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

type embeddingItem struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

// embedInput is one input: the text its vector is derived from, and its
// token count.
type embedInput struct {
	key    string
	tokens int
}

// embeddings answers POST /v1/embeddings.
func (s *Simulator) embeddings(w http.ResponseWriter, r *http.Request, body []byte) {
	var req embeddingRequest
	if !decodeBody(w, body, &req) {
		return
	}
	inputs, problem := parseInputs(req.Input)
	if problem != "" {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "input", "invalid_value", problem)
		return
	}
	dims := DefaultDimensions
	if req.Dimensions != nil {
		dims = *req.Dimensions
		if dims < 1 || dims > MaxDimensions {
			writeError(w, http.StatusBadRequest, typeInvalidRequest, "dimensions", "invalid_value",
				fmt.Sprintf("'dimensions' must be between 1 and %d, got %d.", MaxDimensions, dims))
			return
		}
	}
	b64 := false
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "encoding_format", "invalid_value",
			fmt.Sprintf("'encoding_format' must be \"float\" or \"base64\", got %q.", req.EncodingFormat))
		return
	}
	model := req.Model
	if model == "" {
		model = "sim-embed"
	}

	out := embeddingList{Object: "list", Model: model, Data: make([]embeddingItem, len(inputs))}
	for i, in := range inputs {
		var emb any = Vector(in.key, dims)
		if b64 {
			emb = encodeBase64(emb.([]float32))
		}
		out.Data[i] = embeddingItem{Object: "embedding", Index: i, Embedding: emb}
		out.Usage.PromptTokens += in.tokens
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	s.stats.embedding(len(inputs))
	writeJSON(w, http.StatusOK, out)
}

// parseInputs accepts OpenAI's input forms: a string, an array of strings, an
// array of token ids (one input), or an array of token arrays. It returns
// a problem to report, or "".
func parseInputs(raw json.RawMessage) ([]embedInput, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, jsonNull) {
		return nil, "'input' is required."
	}
	var ins []embedInput
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return checkTokens([]embedInput{{key: one, tokens: countWords(one)}})
	}
	var texts []string
	var tokens []int64
	var tokenLists [][]int64
	switch {
	case json.Unmarshal(raw, &texts) == nil:
		for _, t := range texts {
			ins = append(ins, embedInput{key: t, tokens: countWords(t)})
		}
	case json.Unmarshal(raw, &tokens) == nil:
		ins = []embedInput{tokenInput(tokens)}
	case json.Unmarshal(raw, &tokenLists) == nil:
		for _, t := range tokenLists {
			ins = append(ins, tokenInput(t))
		}
	default:
		return nil, "'input' must be a string, an array of strings, an array of token ids or an array of token id arrays."
	}
	if len(ins) == 0 {
		return nil, "'input' must not be an empty array."
	}
	if len(ins) > MaxEmbeddingBatch {
		return nil, fmt.Sprintf("'input' has %d items; at most %d are allowed.", len(ins), MaxEmbeddingBatch)
	}
	return checkTokens(ins)
}

// checkTokens refuses an input longer than MaxInputTokens.
func checkTokens(ins []embedInput) ([]embedInput, string) {
	for i, in := range ins {
		if in.tokens > MaxInputTokens {
			return nil, fmt.Sprintf("'input[%d]' has %d tokens; at most %d are allowed per input.", i, in.tokens, MaxInputTokens)
		}
	}
	return ins, ""
}

// tokenInput keys a token array by its ids; the prefix keeps it apart from a
// string that happens to spell the same digits.
func tokenInput(ids []int64) embedInput {
	var b strings.Builder
	b.WriteString("\x00tokens")
	for _, id := range ids {
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return embedInput{key: b.String(), tokens: len(ids)}
}

// Vector is the simulator's embedding of text: dims float32 values of unit
// length, derived from a SHA-256 of the text only, so the same text always
// gets the same vector.
func Vector(text string, dims int) []float32 {
	sum := sha256.Sum256([]byte(text))
	state := binary.LittleEndian.Uint64(sum[:8])
	raw := make([]float64, dims)
	var norm float64
	for i := range raw {
		raw[i] = float64(splitmix64(&state)>>11)/(1<<53)*2 - 1
		norm += raw[i] * raw[i]
	}
	norm = math.Sqrt(norm)
	v := make([]float32, dims)
	for i := range raw {
		if norm == 0 {
			v[0] = 1
			break
		}
		v[i] = float32(raw[i] / norm)
	}
	return v
}

// encodeBase64 is OpenAI's base64 embedding form: the little-endian float32
// bytes.
func encodeBase64(v []float32) string {
	buf := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// splitmix64 advances state and returns the next well-mixed value.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// --- models ---

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Simulator) listModels(w http.ResponseWriter, _ *http.Request, _ []byte) {
	data := make([]modelObject, len(s.models))
	for i, id := range s.models {
		data[i] = modelObject{ID: id, Object: "model", Created: modelsCreated, OwnedBy: "deersim"}
	}
	writeJSON(w, http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", data})
}
