// Package supervisor keeps deer's actors running (SPEC §6).
//
// The functional core is pure: Policy computes capped exponential backoff
// with jitter, Tracker decides per child between a delayed restart and
// escalation (restart intensity), Deliveries counts how often each message
// crashed its actor. Time and randomness are arguments, so tests drive them
// over fixed instants.
//
// The shell is Strategy, an actor.SupervisorStrategy built on that core, and
// GroupProps, a supervisor actor that spawns and registers a fixed set of
// children. A crashed child is restarted after its backoff (the Registry says
// "restarting" meanwhile) and the message it crashed on is posted to it again
// with its original sender; protoactor itself would drop it. A message that
// crashed its actor Policy.MaxRedeliveries times is given up: its sender gets
// *messages.DeliveryFailed and the WithGiveUp hook is called. A child failing
// more than Policy.MaxRestarts times within Policy.Window is escalated: its
// supervisor fails in turn and the grandparent's Strategy restarts the whole
// subtree.
//
// Building the tree:
//
//	reg := supervisor.NewRegistry()
//	strategy := func() *supervisor.Strategy { // one per supervising actor
//		return supervisor.NewStrategy(supervisor.DefaultPolicy(), clock.Real{}, reg, set, log)
//	}
//	pools := supervisor.GroupProps("pools", func() []supervisor.ChildSpec {
//		return []supervisor.ChildSpec{{Name: "pool/sim", Props: poolProps}}
//	}, strategy(), reg, log)
//	root, err := supervisor.SpawnRoot(system.Root, "supervisor", func() []supervisor.ChildSpec {
//		return []supervisor.ChildSpec{{Name: "pools", Props: pools}}
//	}, strategy(), reg, log)
//	...
//	system.Root.StopFuture(root).Wait() // cancels pending restarts on the way down
//
// An actor that supervises children of its own, as the router does its
// workers, needs no group: it passes a Strategy to its props and keeps it
// informed.
//
//	s := supervisor.NewStrategy(policy, clk, reg, set, log)
//	props := actor.PropsFromProducer(newRouter, actor.WithSupervisor(s))
//	// in Receive:
//	//   spawn:                pid, err := ctx.SpawnNamed(worker.Props(d), "worker/3"); reg.Register("worker/3", "router", pid)
//	//   *actor.Terminated:    s.Forget(msg.Who)  (and reg.Unregister for a retired worker)
//	//   *actor.Restarting:    s.Reset()
//	//   *actor.Stopping:      s.Stop()
//	//   *messages.DeliveryFailed: fail the task with internal_error
//
// A task dispatched with ctx.Request (the router as sender) comes back as
// *messages.DeliveryFailed to the router once it crashed its worker three
// times. WithGiveUp is the alternative for messages sent without a sender;
// its hook runs on the supervising actor's goroutine between two of its
// messages (GiveUp.Supervisor is its PID, to post a message to).
//
// Caveats: a redelivered message goes to the back of the mailbox, behind
// messages that arrived meanwhile. Crash counts are kept per message
// identity (pointer equality; equal values count together), across the
// children of one Strategy.
package supervisor
