package supervisor

import (
	"testing"
	"time"
)

// TestTrackerSteps drives one child's tracker through failures at fixed
// instants and checks each decision.
func TestTrackerSteps(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	type step struct {
		at   time.Duration // since t0
		u    float64
		want Decision
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Policy)
		steps []step
	}{
		{
			name: "capped exponential",
			steps: []step{
				{0, 0.5, Decision{Restart, 100 * ms, 1, 1}},
				{1 * time.Second, 0.5, Decision{Restart, 200 * ms, 2, 2}},
				{2 * time.Second, 0.5, Decision{Restart, 400 * ms, 3, 3}},
				{3 * time.Second, 0.5, Decision{Restart, 800 * ms, 4, 4}},
				{4 * time.Second, 0.5, Decision{Restart, time.Second, 5, 5}},
				{5 * time.Second, 0.5, Decision{Restart, time.Second, 6, 6}},
			},
		},
		{
			name: "jitter",
			edit: func(p *Policy) { p.Jitter = 0.5 },
			steps: []step{
				{0, 0, Decision{Restart, 50 * ms, 1, 1}},
				{time.Second, 0.999999, Decision{Restart, 299999800 * time.Nanosecond, 2, 2}},
				{2 * time.Second, 0.5, Decision{Restart, 400 * ms, 3, 3}},
				{3 * time.Second, 0.9, Decision{Restart, time.Second, 4, 4}}, // 1.12s capped
			},
		},
		{
			name: "intensity exceeded escalates and starts over",
			edit: func(p *Policy) { p.MaxRestarts = 2; p.Window = 10 * time.Second },
			steps: []step{
				{0, 0.5, Decision{Restart, 100 * ms, 1, 1}},
				{time.Second, 0.5, Decision{Restart, 200 * ms, 2, 2}},
				{2 * time.Second, 0.5, Decision{Escalate, 0, 3, 3}},
				{3 * time.Second, 0.5, Decision{Restart, 100 * ms, 1, 1}},
			},
		},
		{
			name: "failures leave the window",
			edit: func(p *Policy) { p.MaxRestarts = 2; p.Window = 10 * time.Second },
			steps: []step{
				{0, 0.5, Decision{Restart, 100 * ms, 1, 1}},
				{5 * time.Second, 0.5, Decision{Restart, 200 * ms, 2, 2}},
				{10 * time.Second, 0.5, Decision{Restart, 400 * ms, 3, 2}}, // t0 just left
				{15 * time.Second, 0.5, Decision{Restart, 800 * ms, 4, 2}}, // 5s just left
				{16 * time.Second, 0.5, Decision{Escalate, 0, 5, 3}},
			},
		},
		{
			name: "max restarts zero escalates at once",
			edit: func(p *Policy) { p.MaxRestarts = 0 },
			steps: []step{
				{0, 0.5, Decision{Escalate, 0, 1, 1}},
			},
		},
		{
			name: "calm period resets the backoff",
			edit: func(p *Policy) { p.ResetAfter = 30 * time.Second },
			steps: []step{
				{0, 0.5, Decision{Restart, 100 * ms, 1, 1}},
				{time.Second, 0.5, Decision{Restart, 200 * ms, 2, 2}},
				{30 * time.Second, 0.5, Decision{Restart, 400 * ms, 3, 3}}, // 29s after the last
				{60 * time.Second, 0.5, Decision{Restart, 100 * ms, 1, 3}}, // 30s calm: reset; t0 left the window
				{61 * time.Second, 0.5, Decision{Restart, 200 * ms, 2, 3}}, // 1s left
			},
		},
		{
			name: "reset disabled",
			edit: func(p *Policy) { p.ResetAfter = 0; p.Window = time.Second },
			steps: []step{
				{0, 0.5, Decision{Restart, 100 * ms, 1, 1}},
				{time.Hour, 0.5, Decision{Restart, 200 * ms, 2, 1}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			if tc.edit != nil {
				tc.edit(&p)
			}
			tr := NewTracker(p)
			for i, s := range tc.steps {
				if got := tr.Fail(t0.Add(s.at), s.u); got != s.want {
					t.Fatalf("step %d (t0+%v): got %+v, want %+v", i, s.at, got, s.want)
				}
			}
		})
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Restart: "restart", Escalate: "escalate", Action(9): "unknown"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(a), a.String(), want)
		}
	}
	for s, want := range map[State]string{Running: "running", Restarting: "restarting", Stopped: "stopped"} {
		if s.String() != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
	for s, want := range map[groupState]string{groupRunning: "running", groupRestarting: "restarting", groupStopping: "stopping"} {
		if s.String() != want {
			t.Errorf("groupState(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
}
