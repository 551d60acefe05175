package messages

import (
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
)

// AcquireConnection asks pool/UPSTREAM for a connection lease. The pool
// answers *ConnectionLeased at once while fewer than max_connections leases
// are out; otherwise the request waits in the pool's FIFO queue until a lease
// is released. The answer goes to ReplyTo when set (fire-and-forget Send on
// the hot path), else to the sender.
type AcquireConnection struct {
	Ref     uint64     // caller's correlation id, echoed in ConnectionLeased
	ReplyTo *actor.PID // optional; defaults to the sender
	// Endpoints, when set, are the upstream endpoints the call may go to
	// (the ones whose breaker lets calls through); the lease goes to the one
	// with the fewest calls in flight. Empty: any endpoint.
	Endpoints []string
}

// ConnectionLeased grants a lease: use Client for exactly one upstream call,
// then send *ReleaseConnection{LeaseID}. Client is shared and safe for
// concurrent use; it does not follow redirects (deer relays the upstream's
// answer as is) and sets no overall timeout (give the request a context).
// Endpoint is the upstream's base URL.
type ConnectionLeased struct {
	Ref      uint64
	LeaseID  uint64
	Client   *http.Client
	Endpoint string
}

// ReleaseConnection returns a lease. Releasing an unknown or reclaimed lease
// is a no-op.
type ReleaseConnection struct {
	LeaseID uint64
}

// CancelAcquire withdraws an AcquireConnection the caller no longer needs: a
// waiting request leaves the queue; a lease already granted for that Ref (its
// ConnectionLeased may still be in flight) is released. Owner must be the PID
// the request was answered to (ReplyTo, or the sender).
type CancelAcquire struct {
	Owner *actor.PID
	Ref   uint64
}
