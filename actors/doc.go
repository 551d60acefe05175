// Package actors is the parent of deer's component actors, one small package
// per actor kind (router, worker, pool, batch, cache, limiter, breaker,
// metrics). Every package follows the same shape:
//
//   - a functional core: plain structs with the logic, time passed in as an
//     argument, no goroutines, table-tested over fixed instants;
//   - actor.go: a thin Receive that feeds messages to the core and performs
//     the effects (reply, schedule a timer message, update metrics);
//   - Props(Deps) builds the actor. Deps carries the SPEC name, the live
//     configuration (read again on every Started, so a restarted actor runs
//     with the configuration in force), a clock, a logger and a metrics set.
//
// Every actor answers *messages.StatusQuery, *messages.StatsQuery,
// *messages.ApplyConfig and *messages.Ping, and only responds when the
// message has a sender.
package actors
