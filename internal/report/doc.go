// Package report builds the /health and /metrics documents (SPEC §4) from
// what the actors answered. It is a functional core: the runtime asks every
// actor (StatusQuery, StatsQuery) with a short timeout, and hands the
// answers, the configuration in force and the time to Health or Metrics,
// which only compute. Nothing here sends a message, reads a clock or holds
// state; Process, which reads the Go runtime's numbers for system_info, is
// the one exception and is called by the runtime, not by Metrics.
//
// An actor is in one of six states (see ActorState): the three it reports
// about itself, or restarting / down from supervision, or not_responding.
// Components aggregate the states of the actors whose SPEC names they
// cover, worst state first; advanced components map that onto SPEC's three
// states (active, disabled, restarting) in one place, advancedStates, which
// /health's advanced_components and /metrics' per-component status both
// use, so the two documents cannot disagree.
package report
