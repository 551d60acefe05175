package supervisor

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/messages"
)

// ChildSpec is one child of a group.
type ChildSpec struct {
	Name  string // SPEC §6 name, e.g. "pool/sim"; also the child's PID id suffix
	Props *actor.Props
}

// groupState is where a group is in its own life.
type groupState int

const (
	groupRunning    groupState = iota
	groupRestarting            // its parent restarts it: children stop, then respawn
	groupStopping              // it stops for good
)

func (s groupState) String() string {
	switch s {
	case groupRunning:
		return "running"
	case groupRestarting:
		return "restarting"
	case groupStopping:
		return "stopping"
	}
	return "unknown"
}

// group supervises a fixed set of children with a Strategy.
type group struct {
	name     string
	children func() []ChildSpec
	strategy *Strategy
	reg      *Registry
	log      zerolog.Logger
	state    groupState
	names    map[string]string // child PID id → name
}

var _ actor.Actor = (*group)(nil)

// GroupProps returns the props of a supervisor actor registered as name. On
// every start, first or after a restart, it calls children (so the specs
// follow the configuration then in force), spawns each under its name and
// registers it in reg. strategy supervises the children and belongs to this
// group alone. The group answers *messages.Ping.
//
// A root supervisor is a group whose children are groups: a child group that
// exceeds its restart intensity escalates, the root's strategy restarts it,
// and the restarted group spawns its children afresh.
func GroupProps(name string, children func() []ChildSpec, strategy *Strategy, reg *Registry, log zerolog.Logger) *actor.Props {
	log = log.With().Str("actor", name).Logger()
	return actor.PropsFromProducer(func() actor.Actor {
		return &group{name: name, children: children, strategy: strategy, reg: reg, log: log}
	}, actor.WithSupervisor(strategy))
}

// SpawnRoot spawns a top-level group from root under name and registers it.
// A failure of the root group itself meets protoactor's default strategy
// (restart, at most 10 times in 10s).
func SpawnRoot(root *actor.RootContext, name string, children func() []ChildSpec, strategy *Strategy, reg *Registry, log zerolog.Logger) (*actor.PID, error) {
	pid, err := root.SpawnNamed(GroupProps(name, children, strategy, reg, log), name)
	if err != nil {
		return nil, fmt.Errorf("spawn supervisor %q: %w", name, err)
	}
	reg.Register(name, "", pid)
	return pid, nil
}

func (g *group) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		g.spawnChildren(ctx)
	case *messages.Ping:
		if ctx.Sender() != nil {
			ctx.Respond(&messages.Pong{Actor: g.name, Seq: msg.Seq})
		}
	case *messages.StatusQuery:
		// A supervisor that answers is running; its children answer for
		// themselves.
		admin.Respond(ctx, &messages.StatusReport{Actor: g.name, State: messages.StateHealthy})
	case *messages.StatsQuery:
		admin.Respond(ctx, &messages.StatsReport{Actor: g.name})
	case *messages.ApplyConfig:
		// Children read the live configuration when the group respawns them.
		admin.Respond(ctx, &messages.ConfigApplied{Actor: g.name})
	case *actor.Terminated:
		g.terminated(msg.Who)
	case *actor.Restarting:
		// Our children are stopped next and respawned on Started; restarts
		// pending from their previous life must not hit the new ones.
		g.state = groupRestarting
		g.strategy.Reset()
		for _, name := range g.names {
			g.reg.setState(name, Restarting)
		}
	case *actor.Stopping:
		g.state = groupStopping
		g.strategy.Stop()
	case *actor.Stopped:
		g.log.Debug().Msg("supervisor stopped")
	default:
		g.log.Debug().Str("type", fmt.Sprintf("%T", msg)).Msg("unhandled message")
	}
}

func (g *group) spawnChildren(ctx actor.Context) {
	specs := g.children()
	specified := make(map[string]bool, len(specs))
	for _, spec := range specs {
		specified[spec.Name] = true
	}
	// After a restart under new configuration, children of our previous
	// life that are no longer specified were removed on purpose.
	for _, e := range g.reg.Entries() {
		if e.Group == g.name && !specified[e.Name] {
			g.reg.Unregister(e.Name)
		}
	}
	g.names = make(map[string]string, len(specs))
	for _, spec := range specs {
		pid, err := ctx.SpawnNamed(spec.Props, spec.Name)
		if err != nil {
			// Only a duplicate name fails, a bug in the specs; crashing hands
			// it to our own supervisor and makes it loud.
			panic(fmt.Errorf("supervisor %s: spawn %q: %w", g.name, spec.Name, err))
		}
		g.names[pid.Id] = spec.Name
		g.reg.Register(spec.Name, g.name, pid)
	}
	g.log.Debug().Int("children", len(specs)).Msg("supervisor started")
}

func (g *group) terminated(who *actor.PID) {
	g.strategy.Forget(who)
	name, ok := g.names[who.GetId()]
	if !ok {
		return
	}
	delete(g.names, who.Id)
	if g.state == groupRestarting {
		return // it comes back when we do; the registry already says restarting
	}
	g.reg.MarkStopped(name)
	if g.state == groupRunning {
		g.log.Warn().Str("child", name).Msg("child stopped and will not be restarted")
	}
}
