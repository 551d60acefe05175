package deer_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/sim"
	"github.com/deer-runtime/deer/messages"
)

// countingSim is deersim over loopback behind a listener that counts the
// connections it accepts: every dial deer makes, warm-up included.
func countingSim(t *testing.T) (url string, dials *atomic.Int64) {
	t.Helper()
	s := sim.New(sim.DefaultKnobs())
	srv := httptest.NewUnstartedServer(s)
	dials = &atomic.Int64{}
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() { s.Close(); srv.Close() })
	return srv.URL, dials
}

// An upstream whose api_key_env is unset (or empty) at start is not
// warmed, is warned about once, and its tasks are refused at once with
// upstream_key_missing, without a dial; /health shows its pool disabled
// and stays healthy. The keyed upstream beside it is warmed and called, so
// the counting works.
func TestUpstreamWithoutItsKeyIsNeitherWarmedNorCalled(t *testing.T) {
	t.Setenv("DEER_TEST_KEYED", "sk-1")
	t.Setenv("DEER_TEST_EMPTY_KEY", "")
	keyedURL, keyedDials := countingSim(t)
	unsetURL, unsetDials := countingSim(t)
	emptyURL, emptyDials := countingSim(t)
	cfg := testConfig(t)
	cfg.ConnectionPool.InitialConnections = 2
	up := func(url, env string) conf.Upstream {
		u := conf.NewUpstream(url)
		u.APIKeyEnv = env
		return u
	}
	cfg.Upstreams = map[string]conf.Upstream{
		// "a…" sorts first: its pool starts first, so a warm-up it should
		// not have made would have had the head start.
		"a-unset": up(unsetURL, "DEER_TEST_UNSET_KEY_11"),
		"b-empty": up(emptyURL, "DEER_TEST_EMPTY_KEY"),
		"keyed":   up(keyedURL, "DEER_TEST_KEYED"),
	}
	var logs actortest.SyncBuffer
	rt := start(t, cfg, deer.WithLogger(zerolog.New(&logs), nil))

	actortest.Eventually(t, "the keyed upstream's 2 warm connections", func() bool { return keyedDials.Load() == 2 })
	for _, name := range []string{"a-unset", "b-empty"} {
		for range 3 {
			res, err := rt.Submit(context.Background(), &messages.Task{Upstream: name, Method: "POST", Path: "/v1/chat/completions",
				Body: []byte(`{"model":"sim-model","messages":[]}`)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != messages.TaskFailed || res.Err == nil || res.Err.Code != messages.CodeKeyMissing || res.Attempts != 0 {
				t.Fatalf("%s: result %+v err %+v, want upstream_key_missing without attempts", name, res, res.Err)
			}
		}
	}
	if res, err := rt.Submit(context.Background(), &messages.Task{Upstream: "keyed", Method: "GET", Path: "/v1/models"}); err != nil || res.Status != messages.TaskSucceeded {
		t.Fatalf("keyed upstream: %v %+v", err, res)
	}
	if n, m := unsetDials.Load(), emptyDials.Load(); n != 0 || m != 0 {
		t.Errorf("keyless upstreams were dialed: unset %d, empty %d connections", n, m)
	}

	id, res, err := rt.SubmitAsync(context.Background(), &messages.Task{Upstream: "a-unset", Method: "GET", Path: "/v1/models"})
	if err != nil || res == nil || res.ID != id || res.Err.Code != messages.CodeKeyMissing {
		t.Errorf("async: id %q result %+v err %v, want the refusal at once", id, res, err)
	}
	if msg := res.Err.Message; msg != "upstream a-unset needs DEER_TEST_UNSET_KEY_11, which is not set" {
		t.Errorf("message %q", msg)
	}

	for _, want := range []string{`"upstream":"a-unset","api_key_env":"DEER_TEST_UNSET_KEY_11"`, `"upstream":"b-empty","api_key_env":"DEER_TEST_EMPTY_KEY"`} {
		if n := logs.Count(want); n != 1 {
			t.Errorf("%d log lines with %s, want 1 warning:\n%s", n, want, logs.String())
		}
	}
	if n := logs.Count(`"api_key_env":"DEER_TEST_KEYED"`); n != 0 {
		t.Errorf("the keyed upstream was warned about")
	}

	h := rt.Health(context.Background())
	if h.Status != "healthy" || h.Components["connection_pool"] != "healthy" {
		t.Errorf("health %s, connection_pool %s: a keyless upstream must not make the gateway unhealthy", h.Status, h.Components["connection_pool"])
	}
	if p := h.Actors["pool/a-unset"]; p.State != "disabled" || !strings.Contains(p.Detail, "DEER_TEST_UNSET_KEY_11") {
		t.Errorf("pool/a-unset in /health: %+v", p)
	}
	if p := h.Actors["pool/keyed"]; p.State != "healthy" {
		t.Errorf("pool/keyed in /health: %+v", p)
	}
	var out strings.Builder
	rt.MetricsSet().WritePrometheus(&out)
	if !strings.Contains(out.String(), `deer_upstream_key_missing_total{upstream="a-unset"} 4`) {
		t.Errorf("refusals not counted:\n%s", grepLines(out.String(), "key_missing"))
	}
}

func grepLines(s, sub string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
