// Package dispatch runs actor mailboxes on reused goroutines.
//
// protoactor's default dispatcher starts a goroutine every time a mailbox
// gets work. Each fresh goroutine starts on a small stack and grows it on the
// way into an actor's Receive: in deer's task path that stack growth was the
// largest single cost in the CPU profile. Pool keeps goroutines that finished
// a mailbox run waiting for the next one, so their grown stacks are reused.
package dispatch

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Pool is an actor.Dispatcher over a pool of goroutines that grows on
// demand (a mailbox run never waits for a free goroutine, so an actor that
// blocks cannot starve others) and shrinks when goroutines sit idle.
type Pool struct {
	throughput int
	idle       time.Duration
	work       chan func() // unbuffered: a send succeeds only to a waiting goroutine
	quit       chan struct{}
	mu         sync.Mutex // orders running.Add against Close's Wait
	closed     bool
	running    sync.WaitGroup
}

var _ actor.Dispatcher = (*Pool)(nil)

// New returns a pool that processes up to throughput messages per mailbox
// run (protoactor's default is 300) and lets a goroutine go after idle.
func New(throughput int, idle time.Duration) *Pool {
	return &Pool{throughput: throughput, idle: idle, work: make(chan func()), quit: make(chan struct{})}
}

// Schedule runs fn on an idle goroutine, or a new one if none is idle.
func (p *Pool) Schedule(fn func()) {
	select {
	case p.work <- fn:
		return
	default:
	}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.running.Add(1)
	}
	p.mu.Unlock()
	if closed {
		go fn() // after Close: run it, keep no goroutine
		return
	}
	go p.loop(fn)
}

// Throughput is the number of messages a mailbox processes per run.
func (p *Pool) Throughput() int { return p.throughput }

func (p *Pool) loop(fn func()) {
	defer p.running.Done()
	fn()
	timer := time.NewTimer(p.idle)
	defer timer.Stop()
	for {
		select {
		case fn := <-p.work:
			fn()
			timer.Reset(p.idle)
		case <-timer.C:
			return
		case <-p.quit:
			return
		}
	}
}

// Close lets the idle goroutines go and waits for the ones running a
// mailbox to finish it. Work scheduled after Close still runs, on goroutines
// that exit when done.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.quit)
	}
	p.mu.Unlock()
	p.running.Wait()
}
