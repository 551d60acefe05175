package deer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/deer-runtime/deer/messages"
)

// A task slower than monitoring.slow_request_threshold is counted under
// its upstream, with the label escaped as every deer metric's is.
func TestSlowTasksAreCountedPerUpstream(t *testing.T) {
	u := newUpstream(t)
	cfg := taskConfig(t, u)
	cfg.Monitoring.SlowRequestThreshold = 1e-9 // every task is slow
	rt := start(t, cfg)
	for range 2 {
		if res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "up", Method: "POST", Path: "/v1/echo"}); err != nil || res.Status != messages.TaskSucceeded {
			t.Fatalf("task: %+v %v", res, err)
		}
	}
	if prom := prometheusText(rt); !strings.Contains(prom, `deer_slow_tasks_total{upstream="up"} 2`) {
		t.Errorf("Prometheus text lacks the slow-task count:\n%s", prom)
	}
}
