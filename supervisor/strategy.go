package supervisor

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// Strategy is deer's actor.SupervisorStrategy: capped exponential backoff
// with jitter, a restart intensity limit that escalates, and redelivery of
// the message an actor crashed on, capped per message.
//
// One Strategy belongs to one supervising actor (a group, the router): that
// actor calls Forget, Reset and Stop on its own lifecycle events. Its
// methods are safe for concurrent use; HandleFailure runs on the supervising
// actor's goroutine, restart timers on the clock's.
type Strategy struct {
	policy     Policy
	clk        clock.Clock
	reg        *Registry
	set        *metrics.Set
	log        zerolog.Logger
	onGiveUp   func(GiveUp)
	delivLimit int
	delivTTL   time.Duration

	mu         sync.Mutex
	rnd        *rand.Rand
	trackers   map[string]*Tracker // by child PID id
	deliveries *Deliveries
	pending    map[string]*pendingRestart // by child PID id
	closed     bool
}

var _ actor.SupervisorStrategy = (*Strategy)(nil)

// pendingRestart is a restart waiting out its backoff.
type pendingRestart struct {
	timer     clock.Timer
	system    *actor.ActorSystem
	sup       actor.Supervisor
	child     *actor.PID
	name      string
	redeliver any // mailbox item to post again after the restart; nil for none
}

// Escalation is the reason a supervisor hands its parent when one of its
// children failed more often than the restart intensity allows. The parent's
// Strategy restarts the supervisor (and so its whole subtree) and does not
// redeliver the child's message to it.
type Escalation struct {
	Child  string // name of the child that kept failing
	Recent int    // its failures within the window
	Reason any    // its last panic value
}

func (e *Escalation) Error() string {
	return fmt.Sprintf("%s failed %d times within the restart window: %v", e.Child, e.Recent, e.Reason)
}

// NewStrategy returns a strategy applying policy. It panics on a policy that
// fails Validate: configuration is validated long before this is called.
// A nil clk, reg or set is replaced by the wall clock, a private registry or
// a private metric set.
func NewStrategy(policy Policy, clk clock.Clock, reg *Registry, set *metrics.Set, log zerolog.Logger, opts ...Option) *Strategy {
	if err := policy.Validate(); err != nil {
		panic(fmt.Sprintf("supervisor: invalid policy: %v", err))
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if reg == nil {
		reg = NewRegistry()
	}
	if set == nil {
		set = metrics.NewSet()
	}
	s := &Strategy{
		policy:   policy,
		clk:      clk,
		reg:      reg,
		set:      set,
		log:      log,
		trackers: map[string]*Tracker{},
		pending:  map[string]*pendingRestart{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.rnd == nil {
		s.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	s.deliveries = NewDeliveries(s.delivLimit, s.delivTTL)
	return s
}

// Policy returns the policy in force.
func (s *Strategy) Policy() Policy { return s.policy }

// HandleFailure implements actor.SupervisorStrategy. message is the raw
// mailbox item the child crashed on: an envelope, a bare message, or a
// system message such as *actor.Started.
func (s *Strategy) HandleFailure(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, message any) {
	name := s.nameOf(child)
	now := s.clk.Now()
	fd, user := classify(message)
	if _, ok := reason.(*Escalation); ok {
		// The child is a supervisor passing up a grandchild's failure; the
		// message was the grandchild's, and it dies with the subtree.
		user = false
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		// Shutting down: let the child go rather than leave it suspended.
		sup.StopChildren(child)
		return
	}
	dec := s.trackerLocked(child.Id).Fail(now, s.rnd.Float64())
	attempts := 0
	if user {
		attempts = s.deliveries.Crashed(fd.key, now)
	}
	giveUp := user && (dec.Action == Escalate || attempts >= s.policy.MaxRedeliveries)
	if giveUp {
		s.deliveries.Forget(fd.key)
	}
	if dec.Action == Escalate {
		delete(s.trackers, child.Id)
		s.mu.Unlock()
		s.reg.MarkFailed(name, fmt.Sprint(reason), now)
		s.counter("deer_actor_escalations_total", name).Inc()
		s.log.Warn().Str("actor", name).Str("reason", fmt.Sprint(reason)).
			Int("failures", dec.Recent).Dur("window", s.policy.Window).
			Msg("actor exceeded its restart intensity; escalating to its supervisor's parent")
		if giveUp {
			s.giveUp(system, sup, child, name, fd, attempts, reason, true)
		}
		sup.EscalateFailure(&Escalation{Child: name, Recent: dec.Recent, Reason: reason}, message)
		return
	}

	p := &pendingRestart{system: system, sup: sup, child: child, name: name}
	if user && !giveUp {
		p.redeliver = fd.item
	}
	// Registry and metric first and under the lock, so the timer's
	// MarkRunning cannot overtake them even with a zero delay.
	s.reg.MarkRestarting(name, fmt.Sprint(reason), now)
	s.counter("deer_actor_restarts_total", name).Inc()
	p.timer = s.clk.AfterFunc(dec.Delay, func() { s.fire(child.Id, p) })
	s.pending[child.Id] = p
	s.mu.Unlock()

	ev := s.log.Warn().Str("actor", name).Str("reason", fmt.Sprint(reason)).
		Int("attempt", dec.Attempt).Dur("delay", dec.Delay)
	if user {
		ev = ev.Str("message", fmt.Sprintf("%T", fd.msg)).Int("deliveries", attempts).Bool("redeliver", !giveUp)
	}
	ev.Msg("actor crashed; restarting after backoff")
	if giveUp {
		s.giveUp(system, sup, child, name, fd, attempts, reason, false)
	}
}

// fire performs a restart whose backoff has passed, unless it was cancelled.
func (s *Strategy) fire(id string, p *pendingRestart) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked and acted on under the lock: once Forget, Reset or Stop
	// returns, no restart of theirs is sent any more.
	if s.pending[id] != p {
		return
	}
	delete(s.pending, id)
	s.reg.MarkRunning(p.name)
	p.sup.RestartChildren(p.child)
	if p.redeliver != nil {
		// The Restart system message is handled before any user message, so
		// this reaches the new incarnation; posting the original envelope
		// keeps its sender, and a reply goes where it was expected.
		p.system.Root.Send(p.child, p.redeliver)
		s.counter("deer_actor_redeliveries_total", p.name).Inc()
	}
}

func (s *Strategy) giveUp(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, name string, fd failedDelivery, attempts int, reason any, escalated bool) {
	s.counter("deer_actor_deliveries_failed_total", name).Inc()
	s.log.Warn().Str("actor", name).Str("message", fmt.Sprintf("%T", fd.msg)).Int("attempts", attempts).
		Str("reason", fmt.Sprint(reason)).Bool("escalated", escalated).Msg("giving up a message that crashed its actor")
	if fd.sender != nil {
		system.Root.Send(fd.sender, &messages.DeliveryFailed{Actor: name, Message: fd.msg, Attempts: attempts, Reason: fmt.Sprint(reason)})
	}
	if s.onGiveUp != nil {
		g := GiveUp{Child: child, Actor: name, Message: fd.msg, Sender: fd.sender, Attempts: attempts, Reason: reason, Escalated: escalated}
		if self, ok := sup.(interface{ Self() *actor.PID }); ok {
			g.Supervisor = self.Self()
		}
		s.onGiveUp(g)
	}
}

// Forget cancels a pending restart of child and drops its history. The
// supervising actor calls it when child terminated or was retired.
func (s *Strategy) Forget(child *actor.PID) {
	if child == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pending[child.Id]; ok {
		p.timer.Stop()
		delete(s.pending, child.Id)
	}
	delete(s.trackers, child.Id)
}

// Reset cancels every pending restart and forgets every child's history.
// The supervising actor calls it on *actor.Restarting: its children are
// about to be stopped and spawned afresh.
func (s *Strategy) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

// Stop cancels every pending restart for good; later failures stop the
// failing child. The supervising actor calls it on *actor.Stopping, so no
// restart timer outlives the actor system.
func (s *Strategy) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
	s.closed = true
}

// PendingRestarts is the number of restarts waiting out their backoff.
func (s *Strategy) PendingRestarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *Strategy) resetLocked() {
	for id, p := range s.pending {
		p.timer.Stop()
		delete(s.pending, id)
	}
	clear(s.trackers)
}

func (s *Strategy) trackerLocked(id string) *Tracker {
	t, ok := s.trackers[id]
	if !ok {
		t = NewTracker(s.policy)
		s.trackers[id] = t
	}
	return t
}

func (s *Strategy) nameOf(pid *actor.PID) string {
	if name, ok := s.reg.NameOf(pid); ok {
		return name
	}
	return pid.GetId()
}

func (s *Strategy) counter(metric, actorName string) *metrics.Counter {
	return s.set.GetOrCreateCounter(fmt.Sprintf("%s{actor=%q}", metric, actorName))
}
