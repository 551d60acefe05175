package worker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/deer-runtime/deer/actors/breaker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/actortest"
	"github.com/deer-runtime/deer/internal/reply"
	"github.com/deer-runtime/deer/messages"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const a, b, c = "http://a:1", "http://b:1", "http://c:1"

// routeCall is a call of task t1 on upstream u over eps, reading board at
// t0. Each endpoint in grants has a breaker actor that grants the probe at
// the generation given (0: refuses it); the endpoints it is asked about go
// to asked, in order.
func routeCall(t *testing.T, eps []string, board *breaker.Board, grants map[string]uint64) (*call, chan string) {
	t.Helper()
	system := actortest.NewSystem(t)
	box := reply.NewBuffered(system, 8)
	t.Cleanup(box.Close)
	asked := make(chan string, 16)
	breakers := map[string]*actor.PID{}
	for ep, gen := range grants {
		breakers[ep] = actortest.Spawn(t, system, actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *messages.CheckBreaker:
				asked <- ep
				ctx.Send(m.ReplyTo, &messages.BreakerVerdict{ID: m.ID, Allowed: gen != 0, Generation: gen})
			case *messages.Ping:
				ctx.Respond(&messages.Pong{})
			}
		}))
	}
	return &call{
		box: box, system: system, board: board, breakers: breakers, endpoints: eps,
		cfg:  conf.Default(),
		task: &messages.Task{ID: "t1", Upstream: "u"},
		now:  func() time.Time { return t0 },
	}, asked
}

func TestRoute(t *testing.T) {
	closed := func(gen uint64) breaker.Entry { return breaker.Entry{State: breaker.Closed, Generation: gen} }
	open := func(until time.Duration) breaker.Entry {
		return breaker.Entry{State: breaker.Open, Generation: 1, OpenUntil: t0.Add(until)}
	}
	for _, tc := range []struct {
		name   string
		eps    []string
		board  map[string]breaker.Entry // missing: no entry
		grants map[string]uint64        // breaker actors; 0 refuses the probe
		want   []string                 // "endpoint gen" the pool may choose among
		asked  []string                 // probes asked for, in order
		failed string                   // the circuit_open message, when it fails
	}{
		{name: "one endpoint without an entry: closed, generation 0", eps: []string{a}, want: []string{a + " 0"}},
		{name: "one endpoint closed", eps: []string{a}, board: map[string]breaker.Entry{a: closed(4)}, want: []string{a + " 4"}},
		{
			name: "one endpoint open: fail fast with the time to the probe", eps: []string{a},
			board: map[string]breaker.Entry{a: open(30 * time.Second)}, grants: map[string]uint64{a: 9},
			failed: "every endpoint of upstream u has an open circuit breaker; the next probe is in 30s",
		},
		{
			name: "one endpoint due: the breaker grants the probe", eps: []string{a},
			board: map[string]breaker.Entry{a: open(0)}, grants: map[string]uint64{a: 2},
			want: []string{a + " 2"}, asked: []string{a},
		},
		{
			name: "one endpoint due, probe refused: fail fast", eps: []string{a},
			board: map[string]breaker.Entry{a: open(0)}, grants: map[string]uint64{a: 0},
			asked: []string{a}, failed: "every endpoint of upstream u has an open circuit breaker",
		},
		{
			name: "the pool chooses among the closed endpoints", eps: []string{a, b, c},
			board: map[string]breaker.Entry{a: closed(3), b: open(time.Minute), c: closed(5)},
			want:  []string{a + " 3", c + " 5"},
		},
		{
			name: "a due endpoint is probed first, though others are closed", eps: []string{a, b, c},
			board: map[string]breaker.Entry{a: closed(3), b: open(0), c: closed(5)}, grants: map[string]uint64{b: 7},
			want: []string{b + " 7"}, asked: []string{b},
		},
		{
			name: "every due endpoint is tried, in order, before the closed ones", eps: []string{a, b, c},
			board:  map[string]breaker.Entry{a: open(0), b: closed(3), c: open(-time.Second)},
			grants: map[string]uint64{a: 0, c: 8},
			want:   []string{c + " 8"}, asked: []string{a, c},
		},
		{
			name: "probes refused: the closed endpoints", eps: []string{a, b, c},
			board:  map[string]breaker.Entry{a: open(0), b: closed(3), c: closed(0)},
			grants: map[string]uint64{a: 0},
			want:   []string{b + " 3", c + " 0"}, asked: []string{a},
		},
		{
			name: "a due endpoint without a breaker actor is skipped", eps: []string{a, b},
			board: map[string]breaker.Entry{a: open(0), b: closed(1)},
			want:  []string{b + " 1"},
		},
		{
			name: "all open: the earliest probe", eps: []string{a, b, c},
			board:  map[string]breaker.Entry{a: open(time.Minute), b: open(12 * time.Second), c: open(40 * time.Second)},
			failed: "the next probe is in 12s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			board := breaker.NewBoard()
			for ep, e := range tc.board {
				e.Upstream, e.Endpoint = "u", ep
				board.Set(e)
			}
			call, asked := routeCall(t, tc.eps, board, tc.grants)
			r, res := call.route(context.Background())
			var probes []string
			for len(asked) > 0 {
				probes = append(probes, <-asked)
			}
			if !slices.Equal(probes, tc.asked) {
				t.Errorf("probes asked %v, want %v", probes, tc.asked)
			}
			if tc.failed != "" {
				if res == nil || res.Err.Code != messages.CodeCircuitOpen || !strings.Contains(res.Err.Message, tc.failed) {
					t.Fatalf("route = %v, %+v; want circuit_open %q", r.endpoints, res, tc.failed)
				}
				return
			}
			if res != nil {
				t.Fatalf("route failed: %+v", res.Err)
			}
			var got []string
			for _, ep := range r.endpoints {
				got = append(got, fmt.Sprintf("%s %d", ep, r.gen(ep)))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("route = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRouteWithoutBreakers(t *testing.T) {
	eps := []string{a, b}
	open := breaker.Entry{Upstream: "u", Endpoint: a, State: breaker.Open, OpenUntil: t0.Add(time.Hour)}
	// Advanced optimization off: breakers are off the task path.
	board := breaker.NewBoard()
	board.Set(open)
	off, _ := routeCall(t, eps, board, nil)
	off.cfg = conf.Default()
	off.cfg.EnableAdvancedOptimization = false
	if r, res := off.route(context.Background()); res != nil || !slices.Equal(r.endpoints, eps) {
		t.Fatalf("optimization off: %v %+v, want every endpoint", r.endpoints, res)
	}
	// No board: every endpoint.
	none, _ := routeCall(t, eps, nil, nil)
	if r, res := none.route(context.Background()); res != nil || !slices.Equal(r.endpoints, eps) {
		t.Fatalf("no board: %v %+v, want every endpoint", r.endpoints, res)
	}
}

// The common case, one endpoint with its breaker closed, is on every
// attempt of every task: it must not allocate.
func TestRouteOneClosedEndpointDoesNotAllocate(t *testing.T) {
	board := breaker.NewBoard()
	board.Set(breaker.Entry{Upstream: "u", Endpoint: a, State: breaker.Closed, Generation: 3})
	board.Set(breaker.Entry{Upstream: "other", Endpoint: a, State: breaker.Open})
	call, _ := routeCall(t, []string{a}, board, nil)
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		if r, res := call.route(ctx); res != nil || r.gen(a) != 3 {
			t.Fatalf("route %+v %+v", r, res)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per route", n)
	}
}
