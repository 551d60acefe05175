package deer_test

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/messages"
)

type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

// A streamed answer that reaches nobody (its caller gave up as it was
// answered) is closed, which frees its connection and its worker; other
// dead letters are only counted.
func TestAStreamedAnswerNobodyReceivesIsClosed(t *testing.T) {
	rt := start(t, testConfig(t))
	body := &closeCounter{Reader: strings.NewReader("data: x\n\n")}
	nobody := actor.NewPID(rt.System().Address(), "gone")
	rt.System().Root.Send(nobody, &messages.TaskResult{ID: "t1", Status: messages.TaskSucceeded, Stream: body})
	rt.System().Root.Send(nobody, &messages.TaskResult{ID: "t2", Status: messages.TaskSucceeded})
	actortest.Eventually(t, "the stream to be closed", func() bool { return body.closed.Load() == 1 })
}
