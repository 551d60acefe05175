// Package faults injects failures into deer's own actors (SPEC §9): a
// panic, a delay or a dropped message, inside the real actor's receive, so
// that a drill or a test sees what supervision, the router's watchdog and
// the senders' bounds do about it.
//
// The core is Spec, Validate and Match (pure) and Set, the list of faults
// with their counts, which any goroutine may read and change. The shell is
// Set.Wrap, the receive middleware that every component actor and worker
// runs through. With no fault active, Wrap's check is one atomic load.
package faults
