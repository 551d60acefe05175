package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
)

// View is what the shared pieces (limiter, breakers, tasks) know of the
// cluster. Membership (heartbeats in Redis) implements it; Fixed stands in
// where there is none.
type View interface {
	// NodeID names this node, for the process's whole life.
	NodeID() string
	// Alive is the number of nodes alive, this one included, as last seen
	// in Redis: at least 1. While Redis is unreachable it keeps its last
	// value, so that a node falling back to local limits takes rate/Alive,
	// never the whole rate.
	Alive() int
}

// Fixed is a View that never changes: one node of N.
type Fixed struct {
	ID string
	N  int
}

// NodeID implements View.
func (f Fixed) NodeID() string { return f.ID }

// Alive implements View.
func (f Fixed) Alive() int { return max(1, f.N) }

// NewNodeID returns a node id unique to this process: host name, process
// id and 4 random bytes, so that a restarted node is a new member.
func NewNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}
