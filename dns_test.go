package deer_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// A base_url whose host does not exist fails the task on its first
// attempt, with one dial and no dial retries, and says which host. Retry
// delays run on a fake clock nobody advances: a retry would never end, and
// the submission's deadline would fail the test.
func TestNoSuchHostIsNotRetried(t *testing.T) {
	// .invalid never resolves (RFC 6761); the test needs a resolver that
	// says so rather than one that is missing or times out.
	_, err := net.DefaultResolver.LookupHost(context.Background(), "api.example.invalid")
	if dnsErr := (*net.DNSError)(nil); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Skipf("this machine's resolver does not answer NXDOMAIN for .invalid: %v", err)
	}
	cfg := testConfig(t)
	cfg.ConnectionPool.InitialConnections = 0
	cfg.ConnectionPool.MaxRetries = 3
	cfg.ErrorRecovery.MaxRetries = 3
	unlimited(cfg)
	cfg.Upstreams = map[string]conf.Upstream{"gone": conf.NewUpstream("http://api.example.invalid")}
	rt := start(t, cfg, deer.WithClock(clock.NewFake(t0)))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := rt.Submit(ctx, &messages.Task{Upstream: "gone", Method: "GET", Path: "/v1/models"})
	if err != nil {
		t.Fatalf("Submit: %v (retried?)", err)
	}
	if res.Status != messages.TaskFailed || res.Err == nil || res.Err.Code != messages.CodeUpstream || res.Attempts != 1 ||
		!strings.Contains(res.Err.Message, "no such host api.example.invalid") || !strings.Contains(res.Err.Message, "upstreams.gone.base_url") {
		t.Fatalf("result attempts %d err %+v, want one attempt failing upstream_error naming the host", res.Attempts, res.Err)
	}
	pid, _ := rt.Registry().PID("pool/gone")
	rep, err := rt.System().Root.RequestFuture(pid, &messages.StatsQuery{}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	st := rep.(*messages.StatsReport).Stats.(*messages.PoolStats)
	if st.DialRetriesUsed != 0 || st.DialFailures != 1 {
		t.Errorf("dial retries %d failures %d, want 0 and 1", st.DialRetriesUsed, st.DialFailures)
	}
}
