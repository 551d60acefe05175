package batch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const ms, s = time.Millisecond, time.Second

// base: 4 inputs per batch, 1s timeout, 5 pending items, priority on, adaptive off.
var base = Settings{Size: 4, Timeout: s, MaxQueue: 5, PriorityEnabled: true}

// show renders batches as "model/options[ids]reason", space separated.
func show(bs []Batch) string {
	var parts []string
	for _, b := range bs {
		var ids []string
		for _, it := range b.Items {
			ids = append(ids, fmt.Sprint(it.ID))
		}
		name := b.Model
		if b.Options != "" {
			name += "/" + b.Options
		}
		parts = append(parts, fmt.Sprintf("%s[%s]%s", name, strings.Join(ids, ","), b.Reason))
	}
	return strings.Join(parts, " ")
}

type step struct {
	at      time.Duration
	op      string // add, due, configure, flushall
	item    Item
	set     Settings
	want    string // show() of the batches flushed
	err     error
	pending int
}

func add(at time.Duration, id uint64, model string, inputs, priority int, want string, pending int) step {
	return step{at: at, op: "add", item: Item{ID: id, Model: model, Inputs: inputs, Priority: priority}, want: want, pending: pending}
}

func TestQueueSteps(t *testing.T) {
	adaptive := base
	adaptive.Adaptive = true
	cases := []struct {
		name  string
		set   Settings
		steps []step
	}{
		{"full at batch_size inputs", base, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(0, 2, "a", 2, 1, "", 2),
			add(0, 3, "a", 1, 1, "a[1,2,3]size", 0),
		}},
		{"an item that does not fit flushes the batch before it", base, []step{
			add(0, 1, "a", 3, 1, "", 1),
			add(0, 2, "a", 2, 1, "a[1]size", 1),
			add(0, 3, "a", 9, 1, "a[2]size a[3]size", 0), // oversized: goes alone
		}},
		{"grouped by model and options", base, []step{
			add(0, 1, "a", 2, 1, "", 1),
			add(0, 2, "b", 2, 1, "", 2),
			{op: "add", item: Item{ID: 3, Model: "a", Options: "dim=256", Inputs: 2, Priority: 1}, pending: 3},
			add(0, 4, "a", 2, 1, "a[1,4]size", 2),
		}},
		{"timeout counts from the first item", base, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(300*ms, 2, "b", 1, 1, "", 2),
			add(600*ms, 3, "a", 1, 1, "", 3),
			{at: 999 * ms, op: "due", pending: 3},
			{at: s, op: "due", want: "a[1,3]timeout", pending: 1},
			{at: 1300 * ms, op: "due", want: "b[2]timeout", pending: 0},
		}},
		{"a high-priority item flushes its batch at once", base, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(0, 2, "b", 1, 1, "", 2),
			add(0, 3, "a", 1, 0, "a[1,3]priority", 1),
		}},
		{"priority off: level 0 waits like the rest", Settings{Size: 4, Timeout: s, MaxQueue: 5}, []step{
			add(0, 1, "a", 1, 0, "", 1),
			add(0, 2, "a", 1, 0, "", 2),
		}},
		{"max_queue_size bounds pending items", base, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(0, 2, "b", 1, 1, "", 2),
			add(0, 3, "c", 1, 1, "", 3),
			add(0, 4, "d", 1, 1, "", 4),
			add(0, 5, "e", 1, 1, "", 5),
			{op: "add", item: Item{ID: 6, Model: "a", Inputs: 1}, err: ErrQueueFull, pending: 5},
			{at: s, op: "due", want: "a[1]timeout b[2]timeout c[3]timeout d[4]timeout e[5]timeout", pending: 0},
			add(s, 7, "a", 1, 1, "", 1),
		}},
		{"adaptive: sparse arrivals flush at once", adaptive, []step{
			add(0, 1, "a", 1, 1, "", 1), // no gap measured yet: waits
			{at: s, op: "due", want: "a[1]timeout"},
			add(3*s, 2, "a", 1, 1, "a[2]adaptive", 0), // gap 3s > timeout: nothing more will come in time
		}},
		{"adaptive: a medium rate sizes the batch to what the timeout brings", adaptive, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(500*ms, 2, "a", 1, 1, "", 2),                  // gap 500ms: target 1 + 1s/500ms = 3
			add(s, 3, "a", 1, 1, "a[1,2,3]adaptive", 0),       // would have waited for 4
			add(1500*ms, 4, "a", 1, 1, "", 1),                 //
			add(2*s, 5, "a", 1, 1, "", 2),                     //
			add(2500*ms, 6, "a", 1, 1, "a[4,5,6]adaptive", 0), //
		}},
		{"adaptive: dense arrivals grow to batch_size", adaptive, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(10*ms, 2, "a", 1, 1, "", 2),
			add(20*ms, 3, "a", 1, 1, "", 3),
			add(30*ms, 4, "a", 1, 1, "a[1,2,3,4]size", 0),
		}},
		{"a smaller batch_size flushes now-full batches", Settings{Size: 10, Timeout: s, MaxQueue: 100}, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(0, 2, "a", 1, 1, "", 2),
			add(0, 3, "a", 1, 1, "", 3),
			add(0, 4, "b", 1, 1, "", 4),
			{at: 100 * ms, op: "configure", set: Settings{Size: 2, Timeout: s, MaxQueue: 100}, want: "a[1,2]config", pending: 2},
			{at: 900 * ms, op: "due", pending: 2},
			{at: s, op: "due", want: "a[3]timeout b[4]timeout", pending: 0}, // the remainder kept its start
		}},
		{"a shorter batch_timeout flushes what is past it", base, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(400*ms, 2, "b", 1, 1, "", 2),
			{at: 500 * ms, op: "configure", set: Settings{Size: 4, Timeout: 500 * ms, MaxQueue: 5}, want: "a[1]timeout", pending: 1},
		}},
		{"a smaller max_queue_size drops nothing", base, []step{
			add(0, 1, "a", 1, 1, "", 1),
			add(0, 2, "b", 1, 1, "", 2),
			{op: "configure", set: Settings{Size: 4, Timeout: s, MaxQueue: 1}, pending: 2},
			{op: "add", item: Item{ID: 3, Model: "a", Inputs: 1}, err: ErrQueueFull, pending: 2},
			{op: "flushall", want: "a[1]shutdown b[2]shutdown", pending: 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue(tc.set)
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				var got []Batch
				var err error
				switch st.op {
				case "add":
					got, err = q.Add(now, st.item)
				case "due":
					got = q.Due(now)
				case "configure":
					got = q.Configure(now, st.set)
				case "flushall":
					got = q.FlushAll(ReasonShutdown)
				}
				if !errors.Is(err, st.err) {
					t.Fatalf("step %d (%s at %v): err %v, want %v", i, st.op, st.at, err, st.err)
				}
				if show(got) != st.want {
					t.Fatalf("step %d (%s at %v): flushed %q, want %q", i, st.op, st.at, show(got), st.want)
				}
				if q.Pending() != st.pending {
					t.Fatalf("step %d (%s at %v): pending %d, want %d", i, st.op, st.at, q.Pending(), st.pending)
				}
			}
		})
	}
}

func TestQueueDeadlineAndStats(t *testing.T) {
	q := NewQueue(base)
	if _, ok := q.NextDeadline(); ok {
		t.Fatal("empty queue has a deadline")
	}
	q.Add(t0.Add(200*ms), Item{ID: 1, Model: "b", Inputs: 1, Priority: 1})
	q.Add(t0, Item{ID: 2, Model: "a", Inputs: 1, Priority: 1})
	if d, ok := q.NextDeadline(); !ok || !d.Equal(t0.Add(s)) {
		t.Fatalf("deadline %v, want t0+1s", d)
	}
	q.Add(t0, Item{ID: 3, Model: "a", Inputs: 3, Priority: 1}) // fills a
	q.Add(t0, Item{ID: 4, Model: "a", Inputs: 0, Priority: 1}) // counts as 1 input
	for range 3 {
		q.Add(t0, Item{Model: "z", Inputs: 1, Priority: 1})
	}
	q.Add(t0, Item{Model: "y", Inputs: 1, Priority: 1}) // rejected: 5 pending
	want := QueueStats{Pending: 5, Groups: 3, Batches: 1, Items: 2, Inputs: 4, Rejected: 1}
	if st := q.Stats(); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	for r, name := range map[Reason]string{ReasonSize: "size", ReasonTimeout: "timeout", ReasonPriority: "priority",
		ReasonAdaptive: "adaptive", ReasonConfig: "config", ReasonShutdown: "shutdown", Reason(42): "unknown"} {
		if r.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(r), r.String(), name)
		}
	}
}

func TestAdaptiveTargetFollowsInputsPerItem(t *testing.T) {
	q := NewQueue(Settings{Size: 100, Timeout: s, MaxQueue: 1000, Adaptive: true})
	if got := q.Target("m", ""); got != 100 {
		t.Fatalf("target %d before any arrival, want batch_size", got)
	}
	q.Add(t0, Item{Model: "m", Inputs: 4, Priority: 1})
	q.Add(t0.Add(250*ms), Item{Model: "m", Inputs: 4, Priority: 1})
	// gap 250ms: 1 + 4 items by the timeout, 4 inputs each.
	if got := q.Target("m", ""); got != 20 {
		t.Fatalf("target %d, want 20", got)
	}
}
