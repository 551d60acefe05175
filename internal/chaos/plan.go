package chaos

import (
	"fmt"
	"time"
)

// Plan is what a drill does and for how long.
type Plan struct {
	Quick bool `json:"quick"`

	// The load: Rate requests per second for Duration, open loop; a
	// request still unanswered Grace after the schedule ends is lost.
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	Grace    time.Duration `json:"grace"`
	Mix      Mix           `json:"mix"`
	// CacheKeys is how many distinct temperature-0 chats the cache-hit
	// requests repeat.
	CacheKeys int `json:"cache_keys"`
	// SimLatency is deersim's latency for the whole drill.
	SimLatency time.Duration `json:"sim_latency"`

	// Actor faults: panics per panic phase, delays (DelayMS each, at most
	// DelayCount messages) and drops (DropCount messages) per phase.
	PanicCount int `json:"panic_count"`
	DelayMS    int `json:"delay_ms"`
	DelayCount int `json:"delay_count"`
	DropCount  int `json:"drop_count"`

	// Upstream faults, deersim knobs for one phase each.
	ErrorRate float64 `json:"error_rate"`
	ResetRate float64 `json:"reset_rate"`
	HangRate  float64 `json:"hang_rate"`

	// deerd's settings that bound how long a faulted task can take: a hung
	// upstream call ends after UpstreamTimeout, a task whose message was
	// dropped is failed by the router's watchdog after WorkerTimeout (plus
	// one second). Grace must exceed WorkerTimeout.
	UpstreamTimeout time.Duration `json:"upstream_timeout"`
	WorkerTimeout   time.Duration `json:"worker_timeout"`

	// Sample is the interval of the timeline's /health and /faults reads,
	// Poll that of the async tasks' GET /v1/tasks/{id}, Bucket the
	// timeline's resolution.
	Sample time.Duration `json:"sample"`
	Poll   time.Duration `json:"poll"`
	Bucket time.Duration `json:"bucket"`
}

// Mix is the share of each request kind, in parts of the sum.
type Mix struct {
	Chat   int `json:"chat"`
	Stream int `json:"stream"`
	Embed  int `json:"embedding"`
	Task   int `json:"task"`
	Cached int `json:"cached"`
}

// Kind is a kind of request of the mix.
type Kind string

// The request kinds.
const (
	KindChat   Kind = "chat"      // POST /v1/chat/completions
	KindStream Kind = "stream"    // the same, "stream": true
	KindEmbed  Kind = "embedding" // POST /v1/embeddings, one input
	KindTask   Kind = "task"      // POST /v1/tasks async, then GET until terminal
	KindCached Kind = "cached"    // a temperature-0 chat repeating one of CacheKeys prompts
)

// Kinds lists the kinds in report order.
var Kinds = []Kind{KindChat, KindStream, KindEmbed, KindTask, KindCached}

func (m Mix) parts() []int { return []int{m.Chat, m.Stream, m.Embed, m.Task, m.Cached} }

func (m Mix) total() int {
	n := 0
	for _, p := range m.parts() {
		n += p
	}
	return n
}

// KindOf is the kind of request i: the kinds interleaved in their shares,
// so that any stretch of the schedule holds every kind in proportion (a
// weighted round robin: each step takes the kind furthest behind its share).
func (m Mix) KindOf(i int) Kind {
	total := m.total()
	if total <= 0 {
		return KindChat
	}
	pos := i % total
	parts := m.parts()
	credit := make([]int, len(parts))
	var k int
	for step := 0; step <= pos; step++ {
		k = 0
		for j, p := range parts {
			credit[j] += p
			if credit[j] > credit[k] {
				k = j
			}
		}
		credit[k] -= total
	}
	return Kinds[k]
}

// String is the mix as shares: "35% chat, 15% stream, …".
func (m Mix) String() string {
	s := ""
	for i, p := range m.parts() {
		if p == 0 {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%.0f%% %s", 100*float64(p)/float64(m.total()), Kinds[i])
	}
	return s
}

// FullPlan is `make chaos`: the drill issue 10 asks for.
func FullPlan() Plan {
	return Plan{
		Rate: 300, Duration: 60 * time.Second, Grace: 20 * time.Second,
		Mix:       Mix{Chat: 7, Stream: 3, Embed: 4, Task: 3, Cached: 3},
		CacheKeys: 8, SimLatency: 20 * time.Millisecond,
		PanicCount: 3, DelayMS: 200, DelayCount: 20, DropCount: 3,
		ErrorRate: 0.3, ResetRate: 0.2, HangRate: 0.05,
		UpstreamTimeout: 2 * time.Second, WorkerTimeout: 10 * time.Second,
		Sample: 250 * time.Millisecond, Poll: 100 * time.Millisecond, Bucket: time.Second,
	}
}

// QuickPlan is `make chaos QUICK=1` and the base of the short drill in
// the tests: every phase, about ten seconds of load.
func QuickPlan() Plan {
	p := FullPlan()
	p.Quick = true
	p.Rate, p.Duration, p.Grace = 100, 10*time.Second, 6*time.Second
	p.DelayCount = 5
	p.UpstreamTimeout, p.WorkerTimeout = time.Second, 3*time.Second
	p.Sample, p.Poll, p.Bucket = 100*time.Millisecond, 50*time.Millisecond, 500*time.Millisecond
	return p
}

// Validate reports the first setting a drill cannot run with.
func (p Plan) Validate() error {
	switch {
	case !(p.Rate > 0):
		return fmt.Errorf("rate must be > 0, got %v", p.Rate)
	case p.Duration < time.Second:
		return fmt.Errorf("duration must be at least 1s, got %s", p.Duration)
	case p.Grace <= p.WorkerTimeout+time.Second:
		return fmt.Errorf("grace (%s) must exceed the worker timeout (%s) plus the router watchdog's second, or a task failed by the watchdog would count as lost", p.Grace, p.WorkerTimeout)
	case p.Mix.total() <= 0:
		return fmt.Errorf("the mix is empty")
	case p.CacheKeys < 1:
		return fmt.Errorf("cache_keys must be >= 1")
	case p.Sample <= 0 || p.Poll <= 0 || p.Bucket <= 0:
		return fmt.Errorf("sample, poll and bucket must be > 0")
	}
	return nil
}

// Phase kinds.
const (
	PhaseBaseline = "baseline" // no fault
	PhasePanic    = "panic"    // panics into one actor kind
	PhaseDelay    = "delay"    // delays in one actor kind
	PhaseDrop     = "drop"     // dropped messages in one actor kind
	PhaseRecovery = "recovery" // after the last actor fault, until /health is healthy
	PhaseUpstream = "upstream" // deersim answers 5xx, resets or hangs
	PhaseCooldown = "cooldown" // no fault, after the upstream faults
)

// FaultSpec is the body of POST /faults.
type FaultSpec struct {
	Actor   string `json:"actor"`
	Kind    string `json:"kind"`
	Count   int    `json:"count"`
	DelayMS int    `json:"delay_ms,omitempty"`
	Message string `json:"message,omitempty"`
}

// String is the fault as the report names it: "panic ×3", "delay 200ms ×20".
func (f FaultSpec) String() string {
	s := f.Kind
	if f.Kind == "delay" {
		s += fmt.Sprintf(" %dms", f.DelayMS)
	}
	if f.Count > 0 {
		s += fmt.Sprintf(" ×%d", f.Count)
	}
	if f.Message != "" {
		s += " on " + f.Message
	}
	return s
}

// PhaseSpec is one phase of the drill, as offsets from the schedule's
// start. An actor phase removes its faults at Remove and watches /health
// until End.
type PhaseSpec struct {
	Name   string        `json:"name"`
	Kind   string        `json:"kind"`
	Start  time.Duration `json:"start"`
	Remove time.Duration `json:"remove,omitempty"`
	End    time.Duration `json:"end"`
	Faults []FaultSpec   `json:"faults,omitempty"`
	// Knobs is the deersim /_control body at the start of an upstream
	// phase; every fault knob is set back to 0 at its end.
	Knobs string `json:"knobs,omitempty"`
}

// Actor reports whether the phase injects actor faults.
func (p PhaseSpec) Actor() bool {
	return p.Kind == PhasePanic || p.Kind == PhaseDelay || p.Kind == PhaseDrop
}

// PanicTargets are the actor kinds the panic phases crash, in turn (SPEC §6
// names; the drill's upstream is "sim").
var PanicTargets = []string{
	"router", "worker/*", "pool/sim", "limiter/sim", "breaker/sim/*", "batch/sim",
	"cache/l1", "cache/l2", "cache/l3", "metrics", "http",
}

// Slot shares of the schedule, in percent: the actor phases share
// actorShare, the upstream phases upstreamShare.
const (
	baselineShare = 8
	actorShare    = 55
	recoveryShare = 7
	upstreamShare = 18
	// the cool-down takes the rest
)

// removeAt is the part of an actor phase's slot its faults stay in.
const removeAt = 0.6

// Phases lays the drill out over the schedule: baseline, the panic phases,
// the delay and drop phases, recovery, the upstream phases, cool-down.
func (p Plan) Phases() []PhaseSpec {
	var actor []PhaseSpec
	for _, a := range PanicTargets {
		actor = append(actor, PhaseSpec{Name: "panic " + a, Kind: PhasePanic,
			Faults: []FaultSpec{{Actor: a, Kind: "panic", Count: p.PanicCount}}})
	}
	for _, d := range []struct {
		actor string
		ms    int
	}{{"router", min(p.DelayMS, 50)}, {"worker/*", p.DelayMS}, {"cache/l1", p.DelayMS}, {"limiter/sim", p.DelayMS}} {
		actor = append(actor, PhaseSpec{Name: "delay " + d.actor, Kind: PhaseDelay,
			Faults: []FaultSpec{{Actor: d.actor, Kind: "delay", Count: p.DelayCount, DelayMS: d.ms}}})
	}
	for _, a := range []string{"worker/*", "cache/l1", "limiter/sim", "batch/sim"} {
		actor = append(actor, PhaseSpec{Name: "drop " + a, Kind: PhaseDrop,
			Faults: []FaultSpec{{Actor: a, Kind: "drop", Count: p.DropCount}}})
	}
	upstream := []PhaseSpec{
		{Name: "upstream 5xx burst", Kind: PhaseUpstream, Knobs: fmt.Sprintf(`{"error_rate": %g}`, p.ErrorRate)},
		{Name: "upstream resets", Kind: PhaseUpstream, Knobs: fmt.Sprintf(`{"reset_rate": %g}`, p.ResetRate)},
		{Name: "upstream hangs", Kind: PhaseUpstream, Knobs: fmt.Sprintf(`{"hang_rate": %g}`, p.HangRate)},
	}

	share := func(pct float64) time.Duration { return time.Duration(float64(p.Duration) * pct / 100) }
	var out []PhaseSpec
	at := time.Duration(0)
	add := func(ph PhaseSpec, d time.Duration) {
		ph.Start, ph.End = at, at+d
		if ph.Actor() {
			ph.Remove = at + time.Duration(float64(d)*removeAt)
		}
		out = append(out, ph)
		at += d
	}
	add(PhaseSpec{Name: "baseline", Kind: PhaseBaseline}, share(baselineShare))
	slot := share(actorShare) / time.Duration(len(actor))
	for _, ph := range actor {
		add(ph, slot)
	}
	add(PhaseSpec{Name: "recovery", Kind: PhaseRecovery}, share(recoveryShare))
	slot = share(upstreamShare) / time.Duration(len(upstream))
	for _, ph := range upstream {
		add(ph, slot)
	}
	add(PhaseSpec{Name: "cool-down", Kind: PhaseCooldown}, p.Duration-at)
	return out
}

// UpstreamAffected reports whether a phase's failures are the upstream's
// doing: the upstream phases and the cool-down right after them (an open
// breaker waits out its timeout there). The ≥ 99% success goal is judged
// on the other phases.
func UpstreamAffected(kind string) bool { return kind == PhaseUpstream || kind == PhaseCooldown }
