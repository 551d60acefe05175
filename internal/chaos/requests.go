package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deer-runtime/deer/internal/load"
	"github.com/deer-runtime/deer/internal/sim"
)

// driver sends the drill's requests and records them in its ledger.
type driver struct {
	api    *api
	ledger *Ledger
	plan   Plan
	run    string // this run's nonce: its prompts are new to deerd's cache
	names  *regexp.Regexp
	phase  atomic.Int32
	// ctx bounds every request: it ends Grace after the schedule.
	ctx     context.Context
	vectors sync.Map // vectorKey of an embedding input → request id
}

func newDriver(ctx context.Context, a *api, l *Ledger, p Plan, run string) *driver {
	return &driver{api: a, ledger: l, plan: p, run: run, ctx: ctx,
		names: regexp.MustCompile(`chaos-` + regexp.QuoteMeta(run) + `-(\d+)\b`)}
}

// nonce is request id's client id, also in its prompt or input.
func (d *driver) nonce(id int) string { return fmt.Sprintf("chaos-%s-%d", d.run, id) }

// cacheKey is the prompt of the k-th repeated temperature-0 chat.
func (d *driver) cacheKey(k int) string { return fmt.Sprintf("chaos-%s-cache%d", d.run, k) }

// fire is the open loop's send: request i, due at due.
func (d *driver) fire(i int, due time.Time) {
	kind := d.plan.Mix.KindOf(i)
	id := d.ledger.Send(kind, int(d.phase.Load()), due)
	switch kind {
	case KindChat:
		d.chat(id, false)
	case KindStream:
		d.chat(id, true)
	case KindEmbed:
		d.embed(id)
	case KindTask:
		d.task(id)
	case KindCached:
		d.cached(id, i)
	}
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatBody struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	Stream      bool          `json:"stream,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
}

func (d *driver) chatBody(prompt string, stream bool) chatBody {
	return chatBody{Model: "sim-model", Messages: []chatMessage{{Role: "user", Content: prompt + " answer briefly"}}, Stream: stream}
}

// post sends body to path with request id's client id. A nil response
// means no answer, already recorded as such.
func (d *driver) post(id int, path string, body any) (*http.Response, bool) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, d.api.deerd+path, bytes.NewReader(b))
	if err != nil {
		d.ledger.Unanswered(id, "request: "+err.Error())
		return nil, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", d.nonce(id))
	resp, err := d.api.client.Do(req)
	if err != nil {
		d.ledger.Unanswered(id, noAnswer(err))
		return nil, false
	}
	return resp, true
}

// noAnswer names why a request got no HTTP answer.
func noAnswer(err error) string {
	switch kind := load.ErrorKind(err); kind {
	case "timeout", "canceled":
		return "unanswered"
	default:
		return "connection " + kind + " without an answer"
	}
}

// failure names an error answer: its status and error code.
func failure(status int, body []byte) string {
	if code := errorCode(body); code != "" {
		return fmt.Sprintf("%d %s", status, code)
	}
	return strconv.Itoa(status)
}

func answerOf(resp *http.Response) Answer {
	return Answer{At: time.Now(), TaskID: resp.Header.Get("X-Deer-Task-Id"), Cache: resp.Header.Get("X-Deer-Cache")}
}

// chat sends a chat completion whose prompt is the nonce, streamed or not,
// and checks that the answer quotes it.
func (d *driver) chat(id int, stream bool) {
	resp, ok := d.post(id, "/v1/chat/completions", d.chatBody(d.nonce(id), stream))
	if !ok {
		return
	}
	defer resp.Body.Close()
	a := answerOf(resp)
	var content string
	var err error
	complete := true
	if stream && resp.StatusCode == http.StatusOK {
		content, complete, err = readStream(resp.Body)
	} else {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode/100 != 2 {
			a.Failure = failure(resp.StatusCode, b)
			d.ledger.Answer(id, a)
			return
		}
		if err == nil {
			content, err = chatContent(b)
		}
	}
	a.At = time.Now()
	switch {
	case err != nil && errors.Is(err, errNotJSON):
		a.Failure = fmt.Sprintf("%d unreadable answer", resp.StatusCode)
	case err != nil:
		a.Failure = fmt.Sprintf("%d body cut (%s)", resp.StatusCode, load.ErrorKind(err))
	case !complete:
		a.Failure = fmt.Sprintf("%d stream without [DONE]", resp.StatusCode)
	default:
		a.OK, a.Names = d.check(id, content)
		if !a.OK && a.Names == 0 {
			a.Failure = "wrong_answer"
		}
	}
	d.ledger.Answer(id, a)
}

// check reports whether content is request id's own answer; when it names
// another request of this run, which one.
func (d *driver) check(id int, content string) (ok bool, names int) {
	m := d.names.FindStringSubmatch(content)
	if m == nil {
		return false, 0
	}
	n, _ := strconv.Atoi(m[1])
	return n == id, n
}

var errNotJSON = errors.New("not a JSON answer")

// chatContent is the message content of a chat completion.
func chatContent(b []byte) (string, error) {
	var c struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(b, &c) != nil || len(c.Choices) == 0 {
		return "", errNotJSON
	}
	return c.Choices[0].Message.Content, nil
}

// readStream reads a chat completion stream: the content of its chunks,
// and whether it ended with [DONE].
func readStream(r io.Reader) (content string, done bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sb strings.Builder
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			done = true
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal([]byte(data), &chunk) != nil {
			continue // an error event: the stream will not be complete
		}
		for _, c := range chunk.Choices {
			sb.WriteString(c.Delta.Content)
		}
	}
	return sb.String(), done, sc.Err()
}

// vectorKey identifies an embedding by its values' bits.
func vectorKey(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return string(b)
}

// embed asks for the embedding of the nonce and checks that the vector is
// deersim's for it.
func (d *driver) embed(id int) {
	input := d.nonce(id) + " embed"
	want := sim.Vector(input, sim.DefaultDimensions)
	d.vectors.Store(vectorKey(want), id)
	resp, ok := d.post(id, "/v1/embeddings", map[string]any{"model": "sim-embed", "input": input})
	if !ok {
		return
	}
	a, b, ok := readAnswer(resp)
	if ok {
		var e struct {
			Data []struct {
				Embedding []float32 `json:"embedding"`
			} `json:"data"`
		}
		switch {
		case json.Unmarshal(b, &e) != nil || len(e.Data) != 1:
			a.Failure = fmt.Sprintf("%d unreadable answer", resp.StatusCode)
		case vectorKey(e.Data[0].Embedding) == vectorKey(want):
			a.OK = true
		default:
			a.Failure = "wrong_answer"
			if other, ok := d.vectors.Load(vectorKey(e.Data[0].Embedding)); ok {
				a.Names = other.(int)
			}
		}
	}
	d.ledger.Answer(id, a)
}

// readAnswer reads and closes a buffered answer: ok when it is a whole 2xx
// body for the caller to check, else a carries the failure.
func readAnswer(resp *http.Response) (a Answer, body []byte, ok bool) {
	defer resp.Body.Close()
	a = answerOf(resp)
	body, err := io.ReadAll(resp.Body)
	a.At = time.Now()
	switch {
	case err != nil:
		a.Failure = fmt.Sprintf("%d body cut (%s)", resp.StatusCode, load.ErrorKind(err))
	case resp.StatusCode/100 != 2:
		a.Failure = failure(resp.StatusCode, body)
	default:
		return a, body, true
	}
	return a, body, false
}

// cached sends the (i mod CacheKeys)-th repeated temperature-0 chat, which
// deerd answers from its cache after the first.
func (d *driver) cached(id, i int) {
	key := d.cacheKey(i % d.plan.CacheKeys)
	body := d.chatBody(key, false)
	zero := 0.0
	body.Temperature = &zero
	resp, ok := d.post(id, "/v1/chat/completions", body)
	if !ok {
		return
	}
	a, b, ok := readAnswer(resp)
	if ok {
		content, err := chatContent(b)
		switch {
		case err != nil:
			a.Failure = fmt.Sprintf("%d unreadable answer", resp.StatusCode)
		case !strings.Contains(content, key+" "):
			a.Failure = "wrong_answer"
		default:
			a.OK = true
		}
	}
	d.ledger.Answer(id, a)
}

// taskView is the part of a /v1/tasks answer the drill reads.
type taskView struct {
	ID             string          `json:"id"`
	Status         string          `json:"status"`
	UpstreamStatus int             `json:"upstream_status"`
	Body           json.RawMessage `json:"body"`
	Error          *struct {
		Code string `json:"code"`
	} `json:"error"`
}

func (v taskView) terminal() bool { return v.Status == "succeeded" || v.Status == "failed" }

// same reports whether two reads of a finished task give the same result.
func (v taskView) same(w taskView) bool {
	code := func(t taskView) string {
		if t.Error == nil {
			return ""
		}
		return t.Error.Code
	}
	return v.Status == w.Status && v.UpstreamStatus == w.UpstreamStatus && bytes.Equal(v.Body, w.Body) && code(v) == code(w)
}

func (v taskView) String() string {
	if v.Error != nil {
		return fmt.Sprintf("%s (%s)", v.Status, v.Error.Code)
	}
	return fmt.Sprintf("%s (%d)", v.Status, v.UpstreamStatus)
}

// task submits an async task and polls it until it is terminal, then reads
// it once more to check that its result stays the same.
func (d *driver) task(id int) {
	resp, ok := d.post(id, "/v1/tasks", map[string]any{
		"upstream": "sim", "method": "POST", "path": "/v1/chat/completions",
		"body": d.chatBody(d.nonce(id), false), "async": true,
	})
	if !ok {
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := answerOf(resp)
	var v taskView
	switch {
	case err != nil:
		a.Failure = fmt.Sprintf("%d body cut (%s)", resp.StatusCode, load.ErrorKind(err))
	case resp.StatusCode == http.StatusOK: // finished at once
		if json.Unmarshal(b, &v) != nil {
			a.Failure = fmt.Sprintf("%d unreadable answer", resp.StatusCode)
			break
		}
		d.finished(id, a, v)
		return
	case resp.StatusCode != http.StatusAccepted:
		a.Failure = failure(resp.StatusCode, b)
	case json.Unmarshal(b, &v) != nil || v.ID == "":
		a.Failure = fmt.Sprintf("%d without a task id", resp.StatusCode)
	default:
		d.poll(id, v.ID)
		return
	}
	a.At = time.Now()
	d.ledger.Answer(id, a)
}

// poll reads task tid until it is terminal or the drill's deadline.
func (d *driver) poll(id int, tid string) {
	tick := time.NewTicker(d.plan.Poll)
	defer tick.Stop()
	for {
		select {
		case <-d.ctx.Done():
			d.ledger.Unanswered(id, "task never finished")
			return
		case <-tick.C:
		}
		status, v, err := d.getTask(tid)
		switch {
		case err != nil || status == http.StatusServiceUnavailable:
			continue // no answer this time (a router held up): ask again
		case status == http.StatusNotFound:
			d.ledger.Unanswered(id, "task unknown to deerd before it finished")
			return
		case status != http.StatusOK:
			continue
		case !v.terminal():
			continue
		}
		d.finished(id, Answer{At: time.Now(), TaskID: tid}, v)
		// Read it again: a task answered twice would show another result.
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(2 * d.plan.Poll):
		}
		if status, again, err := d.getTask(tid); err == nil && status == http.StatusOK && again.terminal() && !again.same(v) {
			d.ledger.Conflict(id, fmt.Sprintf("task %s finished %s, then read %s", tid, v, again))
		}
		return
	}
}

func (d *driver) getTask(tid string) (int, taskView, error) {
	var v taskView
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, d.api.deerd+"/v1/tasks/"+url.PathEscape(tid), nil)
	if err != nil {
		return 0, v, err
	}
	resp, err := d.api.client.Do(req)
	if err != nil {
		return 0, v, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, v, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			return 0, v, err
		}
	}
	return resp.StatusCode, v, nil
}

// finished records a task's terminal result.
func (d *driver) finished(id int, a Answer, v taskView) {
	if a.TaskID == "" {
		a.TaskID = v.ID
	}
	switch {
	case v.Status == "failed":
		code := "failed"
		if v.Error != nil {
			code = v.Error.Code
		}
		a.Failure = "task " + code
	case v.UpstreamStatus/100 != 2:
		a.Failure = fmt.Sprintf("task upstream %d", v.UpstreamStatus)
	default:
		content, err := chatContent(v.Body)
		if err != nil {
			a.Failure = "task unreadable answer"
			break
		}
		a.OK, a.Names = d.check(id, content)
		if !a.OK && a.Names == 0 {
			a.Failure = "wrong_answer"
		}
	}
	d.ledger.Answer(id, a)
}
