package messages

import "github.com/deer-runtime/deer/conf"

// Component states an actor reports about itself in a StatusReport.
const (
	StateHealthy  = "healthy"  // working normally
	StateDegraded = "degraded" // working, but over a threshold (Detail says which)
	StateDisabled = "disabled" // switched off by configuration
)

// StatusQuery asks an actor how it is (for /health). Reply: *StatusReport.
type StatusQuery struct{}

// StatusReport is an actor's own view of its health.
type StatusReport struct {
	Actor  string // SPEC §6 name, e.g. "pool/sim"
	State  string // StateHealthy, StateDegraded or StateDisabled
	Detail string // why, when not healthy
}

// StatsQuery asks an actor for its live numbers (for /metrics). Reply: *StatsReport.
type StatsQuery struct{}

// StatsReport carries one of the *Stats structs below.
type StatsReport struct {
	Actor string
	Stats any
}

// ApplyConfig hands an actor the configuration now in force; it applies the
// settings it owns before replying *ConfigApplied. Config is immutable.
type ApplyConfig struct {
	Config *conf.Config
}

// ConfigApplied acknowledges an ApplyConfig.
type ConfigApplied struct {
	Actor string
	Err   string // empty on success
}

// Ping asks an actor to prove it is processing messages. Reply: *Pong.
type Ping struct{ Seq uint64 }

// Pong answers Ping.
type Pong struct {
	Actor string
	Seq   uint64
}

// DeliveryFailed tells the sender of a message that the actor processing it
// crashed on it more often than the redelivery cap allows; it was dropped.
type DeliveryFailed struct {
	Actor    string
	Message  any
	Attempts int
	Reason   string
}

// HistoryQuery asks the metrics actor for the retained snapshots. Reply:
// *HistoryReport.
type HistoryQuery struct{}

// HistoryReport holds the retained /metrics snapshots, oldest first.
type HistoryReport struct {
	Snapshots []Snapshot
}

// Snapshot is one /metrics document taken at Timestamp (unix seconds).
type Snapshot struct {
	Timestamp float64 `json:"timestamp"`
	Metrics   any     `json:"metrics"`
}
