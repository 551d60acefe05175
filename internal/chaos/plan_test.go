package chaos

import (
	"strings"
	"testing"
	"time"
)

func TestMixInterleavesKindsInTheirShares(t *testing.T) {
	m := FullPlan().Mix
	counts := map[Kind]int{}
	longest, run := 0, 0
	var last Kind
	for i := range 200 {
		k := m.KindOf(i)
		counts[k]++
		if k == last {
			run++
		} else {
			run = 1
		}
		longest, last = max(longest, run), k
	}
	want := map[Kind]int{KindChat: 70, KindStream: 30, KindEmbed: 40, KindTask: 30, KindCached: 30}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d of 200, want %d", k, counts[k], n)
		}
	}
	if longest > 2 {
		t.Errorf("a run of %d requests of one kind: the kinds should interleave", longest)
	}
	if s := m.String(); s != "35% chat, 15% stream, 20% embedding, 15% task, 15% cached" {
		t.Errorf("mix %q", s)
	}
}

func TestPhasesCoverTheScheduleAndEveryActorKind(t *testing.T) {
	for _, p := range []Plan{FullPlan(), QuickPlan()} {
		phases := p.Phases()
		if phases[0].Kind != PhaseBaseline || phases[0].Start != 0 || phases[len(phases)-1].End != p.Duration {
			t.Fatalf("phases must run from 0 to %s: %+v … %+v", p.Duration, phases[0], phases[len(phases)-1])
		}
		panicked := map[string]bool{}
		kinds := ""
		for i, ph := range phases {
			if i > 0 && ph.Start != phases[i-1].End {
				t.Errorf("%s starts at %s, the one before ends at %s", ph.Name, ph.Start, phases[i-1].End)
			}
			if ph.End <= ph.Start {
				t.Errorf("%s is empty", ph.Name)
			}
			if ph.Actor() != (len(ph.Faults) > 0) || ph.Actor() && !(ph.Remove > ph.Start && ph.Remove < ph.End) {
				t.Errorf("%s: faults %v removed at %s, within %s–%s", ph.Name, ph.Faults, ph.Remove, ph.Start, ph.End)
			}
			for _, f := range ph.Faults {
				if f.Kind == "panic" {
					panicked[f.Actor] = true
				}
			}
			if !strings.HasSuffix(kinds, ph.Kind) {
				kinds += " " + ph.Kind
			}
		}
		if want := " baseline panic delay drop recovery upstream cooldown"; kinds != want {
			t.Errorf("phase kinds in order:%s, want%s", kinds, want)
		}
		for _, a := range PanicTargets {
			if !panicked[a] {
				t.Errorf("no panic phase for %s", a)
			}
		}
		if err := p.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestPlanValidateNamesTheProblem(t *testing.T) {
	p := QuickPlan()
	p.Grace = p.WorkerTimeout
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "grace") {
		t.Errorf("grace within the worker timeout: %v", err)
	}
	p = QuickPlan()
	p.Duration = 500 * time.Millisecond
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("half a second: %v", err)
	}
}

func TestFaultSpecString(t *testing.T) {
	for f, want := range map[FaultSpec]string{
		{Actor: "cache/l1", Kind: "panic", Count: 3}:              "panic ×3",
		{Actor: "router", Kind: "delay", DelayMS: 50, Count: 5}:   "delay 50ms ×5",
		{Actor: "worker/*", Kind: "drop", Message: "CacheLookup"}: "drop on CacheLookup",
	} {
		if got := f.String(); got != want {
			t.Errorf("%+v: %q, want %q", f, got, want)
		}
	}
}

func TestActorKind(t *testing.T) {
	for name, want := range map[string]string{
		"worker/12": "worker/*", "breaker/sim/127.0.0.1:9501": "breaker/sim/*", "cache/l1": "cache/l1", "router": "router",
	} {
		if got := actorKind(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
