package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deer-runtime/deer/conf"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func upstreams(models map[string][]string) map[string]conf.Upstream {
	ups := make(map[string]conf.Upstream, len(models))
	for name, ms := range models {
		up := conf.NewUpstream("http://" + name + ".example")
		up.Models = ms
		ups[name] = up
	}
	return ups
}

func listed(ids ...string) []Listed {
	out := make([]Listed, len(ids))
	for i, id := range ids {
		out[i] = Listed{ID: id, Created: int64(1000 + i)}
	}
	return out
}

// fixture: sim is configured, together and groq are discovered (both serve
// llama3), openai is configured and discovered.
func fixture() (map[string]conf.Upstream, *Catalog) {
	ups := upstreams(map[string][]string{
		"sim":      {"sim-model", "sim-embed"},
		"openai":   {"gpt-4o"},
		"together": nil,
		"groq":     nil,
	})
	c := Empty().
		Record("sim", t0, listed("sim-model", "sim-embed"), nil).
		Record("openai", t0, listed("gpt-4o", "gpt-4.1", "sim-model"), nil).
		Record("together", t0, listed("meta-llama/Llama-3-70b", "llama3", "openai/gpt-oss-20b"), nil).
		Record("groq", t0, listed("llama3", "groq-only"), nil)
	return ups, c
}

func TestResolveOrder(t *testing.T) {
	ups, c := fixture()
	cases := []struct {
		model, def string
		want       Route
		ok         bool
	}{
		{"sim/anything", "", Route{"sim", "anything"}, true},                               // 1: an upstream prefix, listed or not
		{"sim/sim-model", "", Route{"sim", "sim-model"}, true},                             // 1
		{"openai/gpt-oss-20b", "", Route{"openai", "gpt-oss-20b"}, true},                   // 1 beats together's listing
		{"together/openai/gpt-oss-20b", "", Route{"together", "openai/gpt-oss-20b"}, true}, // 1 keeps the rest whole
		{"sim-model", "", Route{"sim", "sim-model"}, true},                                 // 2 beats openai's listing
		{"gpt-4o", "", Route{"openai", "gpt-4o"}, true},                                    // 2
		{"gpt-4.1", "", Route{"openai", "gpt-4.1"}, true},                                  // 3
		{"meta-llama/Llama-3-70b", "", Route{"together", "meta-llama/Llama-3-70b"}, true},  // 3, slashed
		{"llama3", "", Route{"groq", "llama3"}, true},                                      // 3: the first by name
		{"groq-only", "", Route{"groq", "groq-only"}, true},
		{"gpt-9", "sim", Route{"sim", "gpt-9"}, true}, // 4
		{"gpt-9", "", Route{}, false},                 // 5
		{"nope/sim-model", "", Route{}, false},        // not an upstream prefix, not listed
		{"sim/", "", Route{}, false},                  // an empty rest is no route
		{"", "", Route{}, false},
	}
	for _, tc := range cases {
		got, ok := c.Resolve(ups, tc.def, tc.model)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Resolve(%q, default %q) = %v %v, want %v %v", tc.model, tc.def, got, ok, tc.want, tc.ok)
		}
	}
}

func TestResolveConfiguredSlashedID(t *testing.T) {
	ups := upstreams(map[string][]string{"together": {"meta-llama/Llama-3-70b"}, "sim": nil})
	if r, ok := Empty().Resolve(ups, "sim", "meta-llama/Llama-3-70b"); !ok || r != (Route{"together", "meta-llama/Llama-3-70b"}) {
		t.Errorf("a configured slashed id went to %v %v", r, ok)
	}
}

func TestListPrefixesOnlyWhereNeeded(t *testing.T) {
	ups, c := fixture()
	var got []string
	for _, m := range c.List(ups) {
		got = append(got, fmt.Sprintf("%s=%s:%s", m.ID, m.Upstream, m.Model))
	}
	want := []string{
		"llama3=groq:llama3",
		"groq-only=groq:groq-only",
		"gpt-4o=openai:gpt-4o",
		"gpt-4.1=openai:gpt-4.1",
		"openai/sim-model=openai:sim-model", // bare sim-model is sim's
		"sim-model=sim:sim-model",           // configured, listed once though sim lists it too
		"sim-embed=sim:sim-embed",
		"meta-llama/Llama-3-70b=together:meta-llama/Llama-3-70b",
		"together/llama3=together:llama3",                         // bare llama3 is groq's
		"together/openai/gpt-oss-20b=together:openai/gpt-oss-20b", // bare would go to upstream openai
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every listed id routes back to the upstream that serves it, Find answers
// it, and Find refuses what routing cannot place on a known model.
func TestListFindAndResolveAgree(t *testing.T) {
	ups, c := fixture()
	for _, m := range c.List(ups) {
		if r, ok := c.Resolve(ups, "", m.ID); !ok || r != (Route{m.Upstream, m.Model}) {
			t.Errorf("listed %q routes to %v %v, want %s:%s", m.ID, r, ok, m.Upstream, m.Model)
		}
		f, ok := c.Find(ups, m.ID)
		if !ok || f != m {
			t.Errorf("Find(%q) = %+v %v, want %+v", m.ID, f, ok, m)
		}
		// The explicit form of every entry is found too.
		if f, ok := c.Find(ups, m.Upstream+"/"+m.Model); !ok || f.Upstream != m.Upstream || f.Model != m.Model {
			t.Errorf("Find(%s/%s) = %+v %v", m.Upstream, m.Model, f, ok)
		}
	}
	for _, id := range []string{"gpt-9", "sim/gpt-9", "nope/sim-model", "sim/", "together/groq-only"} {
		if f, ok := c.Find(ups, id); ok {
			t.Errorf("Find(%q) = %+v, want not found", id, f)
		}
	}
	if f, _ := c.Find(ups, "gpt-4.1"); f.Created != 1001 {
		t.Errorf("a discovered model keeps the upstream's created: %+v", f)
	}
}

func TestListWithoutDiscovery(t *testing.T) {
	ups := upstreams(map[string][]string{"sim": {"sim-model"}, "openai": {"gpt-4o"}})
	got := Empty().List(ups)
	want := []Model{{ID: "gpt-4o", Upstream: "openai", Model: "gpt-4o"}, {ID: "sim-model", Upstream: "sim", Model: "sim-model"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List = %+v, want %+v", got, want)
	}
	if got := Empty().List(upstreams(map[string][]string{"sim": nil})); len(got) != 0 {
		t.Errorf("nothing configured or discovered: List = %+v", got)
	}
}

func TestRecordAndNeed(t *testing.T) {
	c := Empty()
	if n := c.Need("a", t0); n != Missing {
		t.Fatalf("never fetched: %v", n)
	}
	down := errors.New("upstream a answered 503")
	steps := []struct {
		at     time.Duration
		models []Listed // recorded at `at` when ok or err is set
		err    error
		record bool
		need   Need // at `at`, after recording
		ids    string
		failed bool // the listing tells the last fetch failed
	}{
		{at: 0, err: down, record: true, need: Fresh, ids: "", failed: true},                            // a failure is not retried at once
		{at: FailureTTL - time.Second, need: Fresh, ids: "", failed: true},                              //
		{at: FailureTTL, need: Missing, ids: "", failed: true},                                          // still nothing to show
		{at: FailureTTL, models: listed("m1", "m2", "m1", ""), record: true, need: Fresh, ids: "m1 m2"}, // deduplicated
		{at: FailureTTL + TTL - time.Second, need: Fresh, ids: "m1 m2"},                                 //
		{at: FailureTTL + TTL, need: Stale, ids: "m1 m2"},                                               // usable while refetched
		{at: FailureTTL + TTL, err: down, record: true, need: Fresh, ids: "m1 m2", failed: true},        // the last good list stays
		{at: 2*FailureTTL + TTL, need: Stale, ids: "m1 m2", failed: true},                               //
		{at: 2*FailureTTL + TTL, models: nil, record: true, need: Fresh, ids: ""},                       // an empty list replaces it
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		before := c
		if s.record {
			c = c.Record("a", now, s.models, s.err)
			if before == c {
				t.Fatalf("step %d: Record changed the catalog in place", i)
			}
		}
		if n := c.Need("a", now); n != s.need {
			t.Errorf("step %d: Need = %v, want %v", i, n, s.need)
		}
		l, _ := c.Listing("a")
		var ids []string
		for _, m := range l.Models {
			ids = append(ids, m.ID)
		}
		if strings.Join(ids, " ") != s.ids {
			t.Errorf("step %d: models %q, want %q", i, ids, s.ids)
		}
		if s.failed != (l.Err != "") {
			t.Errorf("step %d: Err = %q", i, l.Err)
		}
	}
	if _, ok := Empty().Listing("a"); ok {
		t.Error("Record changed an earlier catalog")
	}
	if n := c.Need("b", t0); n != Missing {
		t.Errorf("another upstream: %v", n)
	}
}

func TestParseList(t *testing.T) {
	cases := []struct {
		body, want, err string
	}{
		{`{"object":"list","data":[{"id":"a","object":"model","created":1700000000,"owned_by":"x"},{"id":"meta-llama/Llama-3-70b"}]}`, "a@1700000000 meta-llama/Llama-3-70b@0", ""},
		{`{"data":[]}`, "", ""},
		{`{"data":[{"id":""},{"id":7},{"id":"ok","created":"soon"},{"id":"bad\u0000"}]}`, "ok@0", ""},
		{`{"object":"list"}`, "", `no "data" array`},
		{`{"data":null}`, "", `no "data" array`},
		{`<html>`, "", "cannot read"},
		{`{"data":{"id":"a"}}`, "", "cannot read"},
	}
	for _, tc := range cases {
		got, err := ParseList([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseList(%s) error %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseList(%s): %v", tc.body, err)
			continue
		}
		var s []string
		for _, l := range got {
			s = append(s, fmt.Sprintf("%s@%d", l.ID, l.Created))
		}
		if strings.Join(s, " ") != tc.want {
			t.Errorf("ParseList(%s) = %q, want %q", tc.body, s, tc.want)
		}
	}
}

func TestNeedString(t *testing.T) {
	for n, want := range map[Need]string{Fresh: "fresh", Stale: "stale", Missing: "missing", Need(9): "unknown"} {
		if n.String() != want {
			t.Errorf("%d: %q", n, n.String())
		}
	}
}
