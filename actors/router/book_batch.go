package router

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deer-runtime/deer/actors/batch"
	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/messages"
)

// batchable says whether e is an embedding call to combine with others:
// its upstream has batch = "openai-embeddings", it is a buffered POST to an
// embeddings path, and its body parses as one. The enqueue effect is
// returned ready but for its Ref.
func (b *Book) batchable(e *entry) (EnqueueBatch, bool) {
	t := e.task
	path, _, _ := strings.Cut(t.Path, "?")
	if e.single || t.Stream || !strings.HasSuffix(path, "/embeddings") || (t.Method != "" && t.Method != "POST") ||
		b.cfg.Upstreams[t.Upstream].Batch != batch.Kind {
		return EnqueueBatch{}, false
	}
	model, options, inputs, err := batch.ParseEmbeddings(t.Body)
	if err != nil {
		return EnqueueBatch{}, false // the upstream answers it as it is
	}
	return EnqueueBatch{
		Upstream: t.Upstream, Model: model, Options: t.Path + "\x00" + options,
		Inputs: inputs, Priority: t.Priority, Payload: t.Body,
	}, true
}

// BatchRejected takes the batcher's refusal of an item: a full batch queue
// is answered 429 (queue_full); a batcher that does not batch (any more)
// sends the call on alone.
func (b *Book) BatchRejected(now time.Time, msg *messages.BatchRejected) []Effect {
	fx := b.begin()
	e := b.refs[msg.ID]
	if e == nil || e.state != stateBatching {
		return b.end(fx)
	}
	delete(b.refs, msg.ID)
	e.ref = 0
	if msg.Reason == "queue_full" {
		res := worker.Failed(e.task, messages.CodeQueueFull, "the embedding batch queue is full (batch_processing.max_queue_size)")
		// Pending batches all go within one batch_timeout: the hint for
		// Retry-After (the API's own estimate is about the task queue).
		wait := max(1, int(math.Ceil(b.cfg.BatchProcessing.BatchTimeout)))
		res.Header = map[string][]string{"Retry-After": {strconv.Itoa(wait)}}
		b.complete(&fx, now, e, res)
		return b.end(fx)
	}
	e.single = true
	b.enqueue(&fx, now, e, false)
	return b.end(fx)
}

// BatchReady turns a flushed batch into one combined task, queued for a
// worker like any other: no worker waits on another. Items answered
// meanwhile (cancelled, timed out) are left out.
func (b *Book) BatchReady(now time.Time, msg *messages.BatchReady) []Effect {
	fx := b.begin()
	var items []*entry
	for _, it := range msg.Items {
		if e := b.refs[it.ID]; e != nil && e.state == stateBatching {
			items = append(items, e)
		}
	}
	if len(items) == 0 {
		return b.end(fx)
	}
	bodies := make([][]byte, len(items))
	for i, e := range items {
		bodies[i] = e.task.Body
	}
	body, counts, err := batch.Combine(bodies)
	if err != nil || len(items) == 1 {
		// Nothing to combine (or, defensively, items that do not combine):
		// each goes alone.
		for _, e := range items {
			b.single(&fx, now, e)
		}
		return b.end(fx)
	}
	first := items[0].task
	accepted, priority, last := items[0].accepted, first.Priority, now
	for _, e := range items {
		accepted = minTime(accepted, e.accepted)
		priority = min(priority, e.task.Priority)
		last = maxTime(last, e.due)
	}
	ct := &messages.Task{
		ID: b.env.NewID(), Upstream: msg.Upstream, Method: first.Method, Path: first.Path,
		Header: first.Header, Body: body, Priority: priority, Timeout: last.Sub(now),
		Cache: messages.CacheBypass, Submitted: now,
	}
	ce := &entry{task: ct, accepted: accepted, single: true, batch: &combined{items: items, counts: counts}}
	b.tasks[ct.ID] = ce
	for _, e := range items {
		b.carried[e] = ce
	}
	b.enqueue(&fx, now, ce, false)
	return b.end(fx)
}

// single sends a batched item on as its own call.
func (b *Book) single(fx *effects, now time.Time, e *entry) {
	if e.ref != 0 {
		delete(b.refs, e.ref)
		e.ref = 0
	}
	e.single = true
	b.enqueue(fx, now, e, true)
}

// combinedFinished splits a combined call's answer back to its items: a
// success by index, usage in proportion; a 4xx is retried input by input,
// so one bad input fails only its own caller; any other failure (after the
// worker's retries of the whole batch) fails every item with it.
func (b *Book) combinedFinished(fx *effects, now time.Time, ce *entry, res *messages.TaskResult) {
	delete(b.tasks, ce.task.ID)
	cb := ce.batch
	var alive []int
	for i, e := range cb.items {
		delete(b.carried, e)
		if b.waitsForCall(e) {
			alive = append(alive, i)
		}
	}
	status := res.UpstreamStatus
	switch {
	case len(alive) == 0:
	case res.Status == messages.TaskSucceeded && status/100 == 2:
		parts, err := batch.Split(res.Body, cb.counts)
		if err != nil {
			for _, i := range alive {
				b.itemDone(fx, now, cb.items[i], ce, worker.Failed(cb.items[i].task, messages.CodeUpstream,
					fmt.Sprintf("the combined embeddings answer could not be split: %v", err)))
			}
			return
		}
		for _, i := range alive {
			b.itemDone(fx, now, cb.items[i], ce, &messages.TaskResult{
				Status: messages.TaskSucceeded, UpstreamStatus: status, Header: res.Header,
				Body: parts[i], Cache: missLabel(cb.items[i].task), Attempts: res.Attempts, Upstream: res.Upstream,
			})
		}
	case status/100 == 4 && status != 429 && len(cb.items) > 1:
		for _, i := range alive {
			b.single(fx, now, cb.items[i])
		}
	default:
		for _, i := range alive {
			c := copyResult(res)
			c.Cache = missLabel(cb.items[i].task)
			b.itemDone(fx, now, cb.items[i], ce, c)
		}
	}
}

// waitsForCall says whether batched item e still waits for its combined
// call's answer (its caller's, or its followers' when it is detached).
func (b *Book) waitsForCall(e *entry) bool {
	return b.tasks[e.task.ID] == e && e.state == stateBatching
}

// leftCall is told that batched item e may have been answered before its
// combined call finished (cancelled, timed out, its caller and followers
// gone). A call that no item waits for any more is stopped and forgotten,
// as a detached leader left alone is: it would spend an upstream call for
// nobody, and hold a drain to its deadline while it waits for a token
// through a Retry-After pause.
func (b *Book) leftCall(fx *effects, e *entry) {
	ce := b.carried[e]
	if ce == nil || b.waitsForCall(e) {
		return
	}
	delete(b.carried, e)
	for _, it := range ce.batch.items {
		if b.waitsForCall(it) {
			return
		}
	}
	for _, it := range ce.batch.items {
		delete(b.carried, it)
	}
	b.stop(fx, ce)
	b.forget(ce)
	b.checkDrained(fx)
}

// itemDone answers a batched item with its part of the combined call.
func (b *Book) itemDone(fx *effects, now time.Time, e, ce *entry, res *messages.TaskResult) {
	if e.ref != 0 {
		delete(b.refs, e.ref)
		e.ref = 0
	}
	if e.started.IsZero() {
		e.started = ce.started
	}
	b.complete(fx, now, e, res)
}

// missLabel is what an answer from the upstream says about the cache for t.
func missLabel(t *messages.Task) string {
	if t.Cache == messages.CacheBypass {
		return messages.CacheBypass
	}
	return messages.CacheMiss
}

// sortEntries orders entries by acceptance, then id.
func sortEntries(es []*entry) {
	slices.SortFunc(es, func(x, y *entry) int {
		if c := x.accepted.Compare(y.accepted); c != 0 {
			return c
		}
		return strings.Compare(x.task.ID, y.task.ID)
	})
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
