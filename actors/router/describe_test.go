package router

import (
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/messages"
)

// describe renders an effect as one line for scenario scripts; times are
// offsets from t0 and PIDs are shown by their id.
func describe(e Effect, t0 time.Time) string {
	pid := func(p *actor.PID) string {
		if p == nil {
			return "nobody"
		}
		return p.Id
	}
	switch e := e.(type) {
	case Answer:
		switch {
		case e.Task == nil:
			return "answer " + pid(e.To) + ": " + describeResult(e.Result)
		case e.To == nil:
			return "done, kept for GET: " + describeResult(e.Result)
		}
		return "answer " + pid(e.To) + ", done: " + describeResult(e.Result)
	case Accepted:
		return "accepted " + e.ID + " to " + pid(e.To)
	case Run:
		return fmt.Sprintf("run %s on %s (timeout %v)", e.Message.Task.ID, e.Worker.name, e.Message.Timeout)
	case CancelRun:
		return fmt.Sprintf("cancel run %s on %s", e.ID, e.Worker.name)
	case ReplaceWorker:
		return fmt.Sprintf("replace %s: %s", e.Worker.name, e.Why)
	case Requeued:
		return fmt.Sprintf("requeued %s (crashes %d): %s", e.ID, e.Crashes, e.Why)
	case ArmWatchdog:
		return fmt.Sprintf("watchdog at +%v", e.At.Sub(t0))
	case LookupCache:
		return fmt.Sprintf("lookup ref=%d key=%s", e.Ref, e.Key)
	case StoreCache:
		s := fmt.Sprintf("store key=%s status=%d body=%q ttl=%v", e.Key, e.Answer.Status, e.Answer.Body, e.TTL)
		if e.Answer.Stream {
			s += fmt.Sprintf(" stream chunks=%v", e.Answer.Chunks)
		}
		if e.Replace {
			s += " replace"
		}
		return s
	case EnqueueBatch:
		return fmt.Sprintf("enqueue batch/%s ref=%d model=%s inputs=%d priority=%d", e.Upstream, e.Ref, e.Model, e.Inputs, e.Priority)
	case CloseStream:
		return "close stream"
	case Drained:
		ids := make([]string, len(e.To))
		for i, p := range e.To {
			ids[i] = pid(p)
		}
		return fmt.Sprintf("drained to %s: finished %d abandoned %d", strings.Join(ids, ","), e.Finished, e.Abandoned)
	}
	return fmt.Sprintf("%T", e)
}

func describeResult(r *messages.TaskResult) string {
	s := r.ID + " " + r.Status
	if r.UpstreamStatus != 0 {
		s += fmt.Sprintf(" %d", r.UpstreamStatus)
	}
	if r.Cache != "" {
		s += " cache=" + r.Cache
	}
	if r.Err != nil {
		s += " " + r.Err.Code + " (" + r.Err.Message + ")"
		if r.Attempts > 0 && (r.Err.Code == messages.CodeCancelled || r.Err.Code == messages.CodeClientClosed) {
			s += fmt.Sprintf(" attempts=%d", r.Attempts) // what a cancelled call got to do
		}
	}
	if r.Stream != nil {
		s += " stream"
	} else if len(r.Body) > 0 {
		s += fmt.Sprintf(" body=%s", r.Body)
	}
	return s
}
