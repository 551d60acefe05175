package chaos

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// The accounting, step by step: each line sends, answers or gives up on a
// request, and the tally says what became of each.
func TestLedgerTellsLostAndDuplicatesApart(t *testing.T) {
	l := NewLedger(t0)
	send := func(kind Kind, phase int) int { return l.Send(kind, phase, at(0)) }

	ok := send(KindChat, 0)
	l.Answer(ok, Answer{At: at(30), OK: true, TaskID: "t1", Cache: "miss"})

	failed := send(KindChat, 0)
	l.Answer(failed, Answer{At: at(40), Failure: "502 upstream_error", TaskID: "t2"})

	send(KindStream, 1) // no answer by the end: lost, "unanswered"

	closed := send(KindEmbed, 1)
	l.Unanswered(closed, "connection eof without an answer")

	// A request that got another's content: answered but failed, and the
	// request it names has been answered twice.
	victim := send(KindChat, 1)
	l.Answer(victim, Answer{At: at(50), OK: true, TaskID: "t3"})
	thief := send(KindChat, 1)
	l.Answer(thief, Answer{At: at(60), Names: victim, TaskID: "t4"})

	// One deer task id for two requests.
	shared := send(KindCached, 2)
	l.Answer(shared, Answer{At: at(70), OK: true, TaskID: "t1", Cache: "hit-l1"})

	// An async task whose result changed after it finished.
	task := send(KindTask, 2)
	l.Answer(task, Answer{At: at(80), OK: true, TaskID: "t5"})
	l.Conflict(task, "task t5 finished succeeded (200), then read failed (timeout)")

	// An answer after a transport error wins; a second Answer is a duplicate.
	late := send(KindTask, 2)
	l.Unanswered(late, "task unknown to deerd before it finished")
	l.Answer(late, Answer{At: at(90), OK: true, TaskID: "t6"})
	l.Answer(late, Answer{At: at(95), OK: true, TaskID: "t6"})

	phases, total := l.Tally(3)
	if total.Sent != 9 || total.Answered != 7 || total.Succeeded != 5 || total.Lost != 2 {
		t.Errorf("total sent %d answered %d succeeded %d lost %d, want 9, 7, 5, 2", total.Sent, total.Answered, total.Succeeded, total.Lost)
	}
	if total.LostWhy["unanswered"] != 1 || total.LostWhy["connection eof without an answer"] != 1 {
		t.Errorf("lost why %v", total.LostWhy)
	}
	if total.Failed["502 upstream_error"] != 1 || total.Failed["wrong_answer"] != 1 || total.FailedTotal() != 2 {
		t.Errorf("failed %v (total %d); want one 502 and one wrong_answer", total.Failed, total.FailedTotal())
	}
	if total.Duplicates != 4 {
		t.Errorf("duplicates %d, want 4: %+v", total.Duplicates, l.Duplicates())
	}
	if total.CacheHits != 1 || total.ByKind[KindChat] != (KindCounts{Sent: 4, Succeeded: 2}) {
		t.Errorf("cache hits %d, chats %+v", total.CacheHits, total.ByKind[KindChat])
	}
	if phases[0].Sent != 2 || phases[0].Lost != 0 || phases[1].Lost != 2 || phases[1].Duplicates != 1 || phases[2].Duplicates != 3 {
		t.Errorf("per phase: %+v", phases)
	}
	whys := ""
	for _, d := range l.Duplicates() {
		whys += d.Why + "\n"
	}
	for _, want := range []string{
		"request 6 got request 5's answer", "deer task t1 answered requests 1 and 7",
		"task t5 finished succeeded (200), then read failed (timeout)", "answered twice",
	} {
		if !strings.Contains(whys, want) {
			t.Errorf("duplicates say:\n%s\nwant %q", whys, want)
		}
	}
}

func TestLedgerSeriesBucketsBySendAndAnswerTime(t *testing.T) {
	l := NewLedger(t0)
	a := l.Send(KindChat, 0, at(100))
	l.Answer(a, Answer{At: at(1200), OK: true})
	b := l.Send(KindChat, 0, at(900))
	l.Answer(b, Answer{At: at(2500), Failure: "500"})
	l.Send(KindChat, 0, at(1900)) // lost
	l.Send(KindChat, 0, at(99_000))
	sent, ok, failed, lost := l.Series(time.Second, 3)
	want := [][]int{{2, 1, 1}, {0, 1, 0}, {0, 0, 1}, {0, 1, 1}}
	for i, got := range [][]int{sent, ok, failed, lost} {
		for j := range got {
			if got[j] != want[i][j] {
				t.Fatalf("series %d = %v, want %v (a send after the last bucket falls in it)", i, got, want[i])
			}
		}
	}
}
