package metrics

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/admin"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/clock"
	"github.com/deer-runtime/deer/messages"
)

// Deps is what the metrics actor needs.
type Deps struct {
	Name    string // "metrics"
	Live    *conf.Live
	Clock   clock.Clock
	Log     zerolog.Logger
	Metrics *vm.Set
	// Snapshot builds the /metrics document. It runs off the actor's
	// goroutine because it asks the other actors and waits for them.
	Snapshot func(ctx context.Context) any
	// Client pushes to monitoring.push_url; nil means a client with a 10 s timeout.
	Client *http.Client
}

// collectTimeout bounds one snapshot or push.
const collectTimeout = 10 * time.Second

// Actor keeps the metrics history and does the periodic exports.
type Actor struct {
	d   Deps
	log zerolog.Logger
	cfg *conf.Config

	system *actor.ActorSystem
	self   *actor.PID

	hist       history
	timer      clock.Timer
	gen        uint64
	collecting bool
	pushes     uint64
	pushErrors uint64

	// work tracks snapshot and push goroutines, so a stopping actor leaves
	// nothing running behind it.
	work   sync.WaitGroup
	cancel context.CancelFunc
	ctx    context.Context
}

var _ actor.Actor = (*Actor)(nil)

type exportTick struct{ gen uint64 }

type snapshotTaken struct {
	snap messages.Snapshot
}

type pushDone struct{ err error }

// Props builds the metrics actor.
func Props(d Deps) *actor.Props {
	if d.Client == nil {
		d.Client = &http.Client{Timeout: collectTimeout}
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{d: d, log: d.Log.With().Str("actor", d.Name).Logger()}
	})
}

// Receive handles one message.
func (a *Actor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.system, a.self = ctx.ActorSystem(), ctx.Self()
		a.cfg = a.d.Live.Load()
		a.ctx, a.cancel = context.WithCancel(context.Background())
		a.schedule()
	case *actor.Stopping, *actor.Restarting:
		a.stopTimer()
		a.cancel()
		a.work.Wait()
	case *actor.Stopped:
	case *exportTick:
		if msg.gen == a.gen {
			a.export()
			a.schedule()
		}
	case *snapshotTaken:
		a.collecting = false
		if a.cfg.Monitoring.MetricsEnabled {
			a.hist.add(a.d.Clock.Now(), msg.snap, conf.Seconds(a.cfg.Monitoring.MetricsRetention))
		}
	case *pushDone:
		a.pushes++
		if msg.err != nil {
			a.pushErrors++
			a.log.Warn().Err(msg.err).Str("push_url", a.cfg.Monitoring.PushURL).Msg("metrics push failed")
		}
	case *messages.HistoryQuery:
		a.hist.prune(a.d.Clock.Now(), conf.Seconds(a.cfg.Monitoring.MetricsRetention))
		admin.Respond(ctx, &messages.HistoryReport{Snapshots: a.hist.list()})
	case *messages.ApplyConfig:
		old := a.cfg
		a.cfg = msg.Config
		if old.Monitoring.ExportInterval != a.cfg.Monitoring.ExportInterval ||
			old.Monitoring.MetricsEnabled != a.cfg.Monitoring.MetricsEnabled {
			a.schedule()
		}
		a.hist.prune(a.d.Clock.Now(), conf.Seconds(a.cfg.Monitoring.MetricsRetention))
		admin.Respond(ctx, &messages.ConfigApplied{Actor: a.d.Name})
	case *messages.StatusQuery:
		rep := &messages.StatusReport{Actor: a.d.Name, State: messages.StateHealthy}
		if !a.cfg.Monitoring.MetricsEnabled {
			rep.State = messages.StateDisabled
		}
		admin.Respond(ctx, rep)
	case *messages.StatsQuery:
		admin.Respond(ctx, &messages.StatsReport{Actor: a.d.Name, Stats: &messages.MetricsStats{
			Enabled:        a.cfg.Monitoring.MetricsEnabled,
			Snapshots:      len(a.hist.snaps),
			ExportInterval: a.cfg.Monitoring.ExportInterval,
			Retention:      a.cfg.Monitoring.MetricsRetention,
			Pushes:         a.pushes,
			PushErrors:     a.pushErrors,
		}})
	case *messages.Ping:
		admin.Respond(ctx, &messages.Pong{Actor: a.d.Name, Seq: msg.Seq})
	default:
		a.log.Debug().Type("type", msg).Msg("unknown message")
	}
}

// export starts a snapshot (and a push) in the background; their results
// come back as messages. A slow snapshot is not started twice.
func (a *Actor) export() {
	if !a.cfg.Monitoring.MetricsEnabled {
		return
	}
	system, self, parent := a.system, a.self, a.ctx
	if !a.collecting && a.d.Snapshot != nil {
		a.collecting = true
		a.work.Add(1)
		go func() {
			defer a.work.Done()
			ctx, cancel := context.WithTimeout(parent, collectTimeout)
			defer cancel()
			at := a.d.Clock.Now()
			doc := a.d.Snapshot(ctx)
			system.Root.Send(self, &snapshotTaken{snap: messages.Snapshot{Timestamp: unixSeconds(at), Metrics: doc}})
		}()
	}
	if url := a.cfg.Monitoring.PushURL; url != "" {
		var buf bytes.Buffer
		a.d.Metrics.WritePrometheus(&buf)
		a.work.Add(1)
		go func() {
			defer a.work.Done()
			system.Root.Send(self, &pushDone{err: push(parent, a.d.Client, url, &buf)})
		}()
	}
}

func push(ctx context.Context, client *http.Client, url string, body *bytes.Buffer) error {
	ctx, cancel := context.WithTimeout(ctx, collectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("push to %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

func (a *Actor) schedule() {
	a.stopTimer()
	a.gen++
	gen, system, self := a.gen, a.system, a.self
	a.timer = a.d.Clock.AfterFunc(conf.Seconds(a.cfg.Monitoring.ExportInterval), func() {
		system.Root.Send(self, &exportTick{gen: gen})
	})
}

func (a *Actor) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}
