package limiter

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// The limiter's hot path, for docs/benchmarks.md: run with
//
//	go test -run '^$' -bench . -benchmem ./actors/limiter/

// unlimited settings: every Allow succeeds, so the benchmarks time the
// bookkeeping, not waiting.
var unlimited = Settings{InitialRate: 1e9, MinRate: 1, MaxRate: 1e9, AdaptationFactor: 1.2, Window: time.Minute, Burst: 1 << 30}

// BenchmarkBucketAllow: one token taken, the time advancing 1µs a call.
func BenchmarkBucketAllow(b *testing.B) {
	bk := NewBucket(t0, unlimited)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if !bk.Allow(now, 1) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkBucketObserve: one accepted outcome (counted, then the increase
// rules looked at), the time advancing 1µs a call.
func BenchmarkBucketObserve(b *testing.B) {
	bk := NewBucket(t0, unlimited)
	now := t0
	ok := Outcome{Status: 200}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		bk.Observe(now, ok)
	}
}

// BenchmarkBudget: a first attempt and a retry.
func BenchmarkBudget(b *testing.B) {
	bg := NewBudget(time.Minute)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		bg.Request(now, 1)
		bg.Retry(now, 1)
	}
}

func benchSystem(b *testing.B) (*actor.ActorSystem, *actor.PID) {
	b.Helper()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	b.Cleanup(system.Shutdown)
	cfg := conf.Default()
	cfg.RateLimit = conf.RateLimit{InitialRate: 1e9, MinRate: 1, MaxRate: 1e9, AdaptationFactor: 1.2, WindowSize: 60, BurstAllowance: 1 << 30}
	pid := system.Root.Spawn(Props(Deps{
		Name: "limiter/bench", Upstream: "bench", Live: conf.NewLive(cfg), Clock: clock.Real{}, Log: zerolog.Nop(),
	}))
	b.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	return system, pid
}

// requester acts as a worker does: AcquireToken with itself as ReplyTo,
// the next one when the grant comes, until n are granted.
type requester struct {
	limiter *actor.PID
	left    int
	id      uint64
	done    chan struct{}
}

type runRequests struct{ n int }

func (r *requester) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *runRequests:
		r.left = m.n
		r.next(ctx)
	case *messages.TokenGranted:
		if r.left--; r.left == 0 {
			close(r.done)
			return
		}
		r.next(ctx)
	}
}

func (r *requester) next(ctx actor.Context) {
	r.id++
	ctx.Send(r.limiter, &messages.AcquireToken{ID: r.id, ReplyTo: ctx.Self()})
}

// BenchmarkAcquireRoundTrip: AcquireToken → TokenGranted between two
// actors (Send with a reply-to PID, as a worker asks), one at a time.
func BenchmarkAcquireRoundTrip(b *testing.B) {
	system, pid := benchSystem(b)
	r := &requester{limiter: pid, done: make(chan struct{})}
	rpid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }))
	b.Cleanup(func() { _ = system.Root.StopFuture(rpid).Wait() })
	b.ReportAllocs()
	b.ResetTimer()
	system.Root.Send(rpid, &runRequests{n: b.N})
	<-r.done
}

// BenchmarkAcquireFuture: the same round trip through RequestFuture from
// outside the actor system, for comparison.
func BenchmarkAcquireFuture(b *testing.B) {
	system, pid := benchSystem(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := system.Root.RequestFuture(pid, &messages.AcquireToken{ID: uint64(i)}, time.Second).Result(); err != nil {
			b.Fatal(err)
		}
	}
}
