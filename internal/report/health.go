package report

import "time"

// HealthReport is the /health document (SPEC §4).
type HealthReport struct {
	Status             string                 `json:"status"`
	Timestamp          float64                `json:"timestamp"`
	Configuration      HealthConfiguration    `json:"configuration"`
	Components         map[string]string      `json:"components"`
	AdvancedComponents map[string]string      `json:"advanced_components"`
	Actors             map[string]ActorHealth `json:"actors"`
	UptimeSeconds      float64                `json:"uptime_seconds"`
	// Cluster is this node's view of the cluster (cluster.redis_url set):
	// node id, Redis reachable, nodes alive; absent on a single node.
	Cluster any `json:"cluster,omitempty"`
}

// HealthConfiguration is the switches /health echoes.
type HealthConfiguration struct {
	AdvancedOptimization bool `json:"advanced_optimization"`
	Collaboration        bool `json:"collaboration"`
	DebugMode            bool `json:"debug_mode"`
}

// Health builds the /health document from every actor's answer to
// StatusQuery.
func Health(in Input) *HealthReport {
	cfg := in.Config
	actors := actorStates(in.Answers)
	rep := &HealthReport{
		Timestamp: unixSeconds(in.Now),
		Configuration: HealthConfiguration{
			AdvancedOptimization: cfg.EnableAdvancedOptimization,
			Collaboration:        cfg.EnableCollaboration,
			DebugMode:            cfg.DebugMode,
		},
		Components:         basicStates(actors),
		AdvancedComponents: advancedStates(actors, cfg.EnableAdvancedOptimization),
		Actors:             actors,
		UptimeSeconds:      in.Now.Sub(in.Started).Seconds(),
	}
	rep.Status = overallStatus(rep)
	return rep
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
