package admin

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/leaktest"
	"github.com/deer-runtime/deer/messages"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

type stats struct{ n int }

func TestHandleAnswersTheAdminMessages(t *testing.T) {
	system := actortest.NewSystem(t)
	var applied []*conf.Config
	var others []any
	fail := false
	a := &Answers{
		Name: "thing/x",
		Status: func() *messages.StatusReport {
			return &messages.StatusReport{Actor: "thing/x", State: messages.StateHealthy}
		},
		Stats: func() any { return &stats{n: 7} },
		Apply: func(_ actor.Context, cfg *conf.Config) error {
			applied = append(applied, cfg)
			if fail {
				return errors.New("cannot")
			}
			return nil
		},
	}
	pid := actortest.Spawn(t, system, actor.PropsFromFunc(func(c actor.Context) {
		if !a.Handle(c) {
			switch m := c.Message().(type) {
			case *actor.Started, *actor.Stopping, *actor.Stopped:
			case string:
				others = append(others, m)
				Respond(c, "ok:"+m)
			}
		}
	}))

	if st := actortest.Ask[*messages.StatusReport](t, system, pid, &messages.StatusQuery{}); st.State != messages.StateHealthy {
		t.Errorf("status %+v", st)
	}
	if sr := actortest.Ask[*messages.StatsReport](t, system, pid, &messages.StatsQuery{}); sr.Actor != "thing/x" || sr.Stats.(*stats).n != 7 {
		t.Errorf("stats %+v", sr)
	}
	if p := actortest.Ask[*messages.Pong](t, system, pid, &messages.Ping{Seq: 3}); p.Seq != 3 || p.Actor != "thing/x" {
		t.Errorf("pong %+v", p)
	}
	cfg := conf.Default()
	if ack := actortest.Ask[*messages.ConfigApplied](t, system, pid, &messages.ApplyConfig{Config: cfg}); ack.Err != "" {
		t.Errorf("apply: %+v", ack)
	}
	fail = true
	if ack := actortest.Ask[*messages.ConfigApplied](t, system, pid, &messages.ApplyConfig{Config: cfg}); ack.Err != "cannot" {
		t.Errorf("failed apply: %+v", ack)
	}
	if ack := actortest.Ask[*messages.ConfigApplied](t, system, pid, &messages.ApplyConfig{}); ack.Err != "no configuration" {
		t.Errorf("nil config: %+v", ack)
	}
	if len(applied) != 2 {
		t.Errorf("Apply called %d times, want 2 (not for a nil config)", len(applied))
	}
	// Anything else is left to the actor.
	if got := actortest.Ask[string](t, system, pid, "other"); got != "ok:other" {
		t.Errorf("non-admin message: %q", got)
	}
	// Without a sender nothing is answered (no dead letter): the actor
	// still processes the next message normally.
	system.Root.Send(pid, &messages.Ping{})
	if _, err := system.Root.RequestFuture(pid, &messages.Ping{Seq: 9}, time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	if len(others) != 1 {
		t.Errorf("others = %v", others)
	}
}

func TestNewWiresAnActorsMethods(t *testing.T) {
	var applied *conf.Config
	status := &messages.StatusReport{Actor: "thing/y"}
	a := New("thing/y",
		func() *messages.StatusReport { return status },
		func() *stats { return &stats{n: 4} },
		func(_ actor.Context, cfg *conf.Config) { applied = cfg })
	if a.Name != "thing/y" || a.Status() != status {
		t.Errorf("name %q, status %+v", a.Name, a.Status())
	}
	if s, ok := a.Stats().(*stats); !ok || s.n != 4 {
		t.Errorf("stats %#v, want the *stats", a.Stats())
	}
	cfg := conf.Default()
	if err := a.Apply(nil, cfg); err != nil || applied != cfg {
		t.Errorf("Apply: err %v, applied %p, want nil and %p", err, applied, cfg)
	}
}

func TestReplyToPrefersTheMessagesPID(t *testing.T) {
	system := actortest.NewSystem(t)
	other := actor.NewPID("nonhost", "other")
	var got []*actor.PID
	pid := actortest.Spawn(t, system, actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *messages.Ping: // Spawn's readiness check
			Respond(c, &messages.Pong{})
		case *actor.PID:
			got = append(got, ReplyTo(c, m))
		case string:
			got = append(got, ReplyTo(c, nil))
			Respond(c, "done")
		}
	}))
	system.Root.Send(pid, other) // a reply-to and no sender
	system.Root.Send(pid, "no sender, no reply-to")
	actortest.Ask[string](t, system, pid, "sender only")
	if len(got) != 3 || got[0] != other || got[1] != nil || got[2] == nil || got[2].Equal(pid) {
		t.Errorf("ReplyTo gave %v, want [other <nil> the asker]", got)
	}
}
