// Package leaktest holds the goleak options every test package of deer uses.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// options ignore goroutines that the actor library starts and ends on its
// own schedule, not ours: the dead-letter throttle sleeps out its interval
// (one second by default) after a dead letter before it exits.
var options = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
}

// VerifyTestMain runs the package's tests and fails if goroutines remain.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, options...)
}

// Options returns the shared options, for goleak.VerifyNone in one test.
func Options() []goleak.Option {
	return append([]goleak.Option(nil), options...)
}
