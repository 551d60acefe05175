// Package member is the "cluster" actor: this node's heartbeat in the
// cluster's Redis (cluster.redis_url). Every HeartbeatEvery it records the
// node and reads the members (cluster.Members.Beat), off its goroutine so
// that a slow Redis never holds its mailbox; its status is degraded while
// Redis does not answer, which /health shows. It exists only when
// cluster.redis_url is set.
package member

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/messages"
)

// Deps is what the cluster actor is built from.
type Deps struct {
	Name    string // "cluster"
	Members *cluster.Members
	Redis   redis.Cmdable
	Clock   clock.Clock
	Log     zerolog.Logger
}

// beatTimeout bounds one heartbeat; a beat that takes longer has failed.
const beatTimeout = 500 * time.Millisecond

// Actor heartbeats. Its state is touched only on its own goroutine.
type Actor struct {
	d       Deps
	answers *admin.Answers
	log     zerolog.Logger
	system  *actor.ActorSystem
	self    *actor.PID
	alarm   clock.Alarm
	beating bool
	wasUp   bool
	work    sync.WaitGroup
}

type tick struct{ gen uint64 }
type beaten struct{ err error }

// Props builds the cluster actor.
func Props(d Deps) *actor.Props {
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	return actor.PropsFromProducer(func() actor.Actor {
		a := &Actor{d: d, wasUp: true}
		a.answers = admin.New(d.Name, a.status, a.stats, func(actor.Context, *conf.Config) {})
		return a
	})
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	if a.answers.Handle(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.system, a.self = ctx.ActorSystem(), ctx.Self()
		a.log = a.d.Log.With().Str("actor", a.d.Name).Logger()
		a.beat()
	case *tick:
		if a.alarm.Fired(msg.gen) {
			a.beat()
		}
	case *beaten:
		a.beating = false
		a.logChange(msg.err)
		system, self := a.system, a.self
		a.alarm.Set(a.d.Clock, a.d.Clock.Now().Add(cluster.HeartbeatEvery), func(gen uint64) {
			system.Root.Send(self, &tick{gen: gen})
		})
	case *actor.Stopping:
		a.alarm.Stop()
		a.work.Wait()
		// A clean stop leaves at once; a killed node drops out after
		// AliveFor.
		c, cancel := context.WithTimeout(context.Background(), beatTimeout)
		_ = a.d.Members.Leave(c, a.d.Redis)
		cancel()
	case *actor.Restarting:
		a.alarm.Stop()
		a.work.Wait()
	}
}

func (a *Actor) beat() {
	if a.beating {
		return
	}
	a.beating = true
	now, system, self := a.d.Clock.Now(), a.system, a.self
	a.work.Add(1)
	go func() {
		defer a.work.Done()
		c, cancel := context.WithTimeout(context.Background(), beatTimeout)
		err := a.d.Members.Beat(c, a.d.Redis, now)
		cancel()
		system.Root.Send(self, &beaten{err: err})
	}()
}

func (a *Actor) logChange(err error) {
	switch {
	case err != nil && a.wasUp:
		a.log.Warn().Err(err).Int("nodes_alive", a.d.Members.Alive()).
			Msg("redis unreachable: this node keeps serving on local limits, breakers and tasks")
	case err == nil && !a.wasUp:
		a.log.Info().Int("nodes_alive", a.d.Members.Alive()).Msg("redis reachable: rejoined the cluster")
	}
	a.wasUp = err == nil
}

func (a *Actor) status() *messages.StatusReport {
	r := &messages.StatusReport{Actor: a.d.Name, State: messages.StateHealthy}
	h := a.d.Members.Health(a.d.Clock.Now())
	if !h.RedisUp && h.Failures > 0 { // before the first heartbeat's answer: nothing known yet
		r.State = messages.StateDegraded
		r.Detail = fmt.Sprintf("redis unreachable for %.1f s (%s): local limits at rate / %d nodes", h.DownFor, h.RedisError, h.NodesAlive)
	}
	return r
}

func (a *Actor) stats() cluster.Health { return a.d.Members.Health(a.d.Clock.Now()) }
