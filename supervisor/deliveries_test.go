package supervisor

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

type task struct{ id int }

func TestDeliveriesCount(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDeliveries(10, time.Minute)
	a, b := &task{1}, &task{1} // equal contents, distinct messages
	for i, tc := range []struct {
		key  any
		at   time.Duration
		want int
	}{
		{a, 0, 1},
		{a, time.Second, 2},
		{b, time.Second, 1},
		{a, 2 * time.Second, 3},
		{a, 2*time.Second + time.Minute, 1}, // a minute after its last crash: forgotten
	} {
		if got := d.Crashed(tc.key, t0.Add(tc.at)); got != tc.want {
			t.Fatalf("step %d: count %d, want %d", i, got, tc.want)
		}
	}
	if d.Len() != 1 { // b expired in the same sweep
		t.Fatalf("Len = %d, want 1", d.Len())
	}
	d.Forget(a)
	if d.Len() != 0 {
		t.Fatalf("Len after Forget = %d, want 0", d.Len())
	}
}

func TestDeliveriesBounded(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDeliveries(3, time.Hour)
	msgs := []*task{{0}, {1}, {2}, {3}}
	for i, m := range msgs {
		d.Crashed(m, t0.Add(time.Duration(i)*time.Second))
	}
	if d.Len() != 3 {
		t.Fatalf("Len = %d, want 3", d.Len())
	}
	// msgs[0] was the stalest and was evicted: it counts from 1 again,
	// evicting msgs[1] in turn; msgs[3] kept its count.
	if got := d.Crashed(msgs[0], t0.Add(time.Minute)); got != 1 {
		t.Fatalf("evicted message counted %d, want 1", got)
	}
	if got := d.Crashed(msgs[3], t0.Add(time.Minute)); got != 2 {
		t.Fatalf("kept message counted %d, want 2", got)
	}
}

func TestClassify(t *testing.T) {
	m := &task{7}
	sender := actor.NewPID("local", "future$1")
	env := &actor.MessageEnvelope{Message: m, Sender: sender}
	slice := []int{1}
	sliceEnv := &actor.MessageEnvelope{Message: slice}
	for _, tc := range []struct {
		name    string
		item    any
		user    bool
		key     any
		msg     any
		sender  *actor.PID
		newItem bool // a fresh envelope is posted instead of item
	}{
		{name: "nil", item: nil},
		{name: "nil envelope", item: (*actor.MessageEnvelope)(nil)},
		{name: "started", item: &actor.Started{}},
		{name: "restart", item: &actor.Restart{}},
		{name: "stopping", item: &actor.Stopping{}},
		{name: "restarting in envelope", item: &actor.MessageEnvelope{Message: &actor.Restarting{}}},
		{name: "poison pill", item: &actor.PoisonPill{}},
		{name: "receive timeout", item: &actor.ReceiveTimeout{}},
		{name: "bare pointer", item: m, user: true, key: m, msg: m},
		{name: "envelope", item: env, user: true, key: m, msg: m, sender: sender},
		{name: "string", item: "hello", user: true, key: "hello", msg: "hello"},
		{name: "slice in envelope", item: sliceEnv, user: true, key: sliceEnv, msg: slice},
		{name: "bare slice", item: slice, user: true, msg: slice, newItem: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, user := classify(tc.item)
			if user != tc.user {
				t.Fatalf("user = %v, want %v", user, tc.user)
			}
			if !user {
				return
			}
			if fd.sender != tc.sender {
				t.Errorf("sender = %v, want %v", fd.sender, tc.sender)
			}
			if s, ok := tc.msg.([]int); ok {
				if got, _ := fd.msg.([]int); len(got) != len(s) || &got[0] != &s[0] {
					t.Errorf("msg = %v, want %v", fd.msg, tc.msg)
				}
			} else if fd.msg != tc.msg {
				t.Errorf("msg = %v, want %v", fd.msg, tc.msg)
			}
			if tc.newItem {
				env, ok := fd.item.(*actor.MessageEnvelope)
				if !ok || fd.key != any(env) {
					t.Fatalf("item %T, key %v: want a fresh envelope as both", fd.item, fd.key)
				}
				return
			}
			if fd.item != tc.item {
				t.Errorf("item = %v, want the original %v", fd.item, tc.item)
			}
			if fd.key != tc.key {
				t.Errorf("key = %v, want %v", fd.key, tc.key)
			}
		})
	}
}
