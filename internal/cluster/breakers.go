package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// BreakerChange is one node's breaker of an endpoint changing state, as the
// other nodes hear it: opened (for OpenFor, what that node has left before
// its probe) or closed (its half_open probe succeeded).
type BreakerChange struct {
	Node     string `json:"node"`
	Upstream string `json:"upstream"`
	Endpoint string `json:"endpoint"`
	State    string `json:"state"` // "open" or "closed"
	OpenFor  int64  `json:"open_for_ms,omitempty"`
}

// Breaker states as BreakerChange carries them.
const (
	BreakerOpen   = "open"
	BreakerClosed = "closed"
)

// breakerChannel is where changes are published; every node subscribes.
var breakerChannel = Key("breakers")

// breakerKey holds an open endpoint's last opening until its probe is due,
// for a node that starts (or restarts its breaker) while it is open.
func breakerKey(upstream, endpoint string) string { return Key("breaker", upstream, endpoint) }

// probeKey is the cluster's one half_open probe of an endpoint: the node
// that set it first probes, the others wait for its result.
func probeKey(upstream, endpoint string) string { return Key("breaker", upstream, endpoint, "probe") }

// breakerTimeout bounds each Redis call of the breakers: a probe claim is
// made while a breaker actor waits, and a gone Redis must not hold it.
const breakerTimeout = 200 * time.Millisecond

// Breakers shares breaker changes between nodes: Publish sends this node's
// changes (in order, off the caller's goroutine), Watch delivers the other
// nodes' changes of one endpoint, ClaimProbe makes the half_open probe one
// per cluster. A change published while a node is cut off from Redis does
// not reach it; it learns of an opening still in force when its breaker
// next starts (Current), and of any later change as it happens.
type Breakers struct {
	rdb  *redis.Client
	node string
	out  chan BreakerChange

	mu       sync.Mutex
	watchers map[[2]string]*watch

	stop context.CancelFunc
	done sync.WaitGroup

	subscribed                           atomic.Bool
	published, received, failed, dropped atomic.Uint64
}

// Subscribed reports whether this node hears the others' changes: its
// subscription has been confirmed by Redis.
func (b *Breakers) Subscribed() bool { return b.subscribed.Load() }

// NewBreakers returns node's side of the shared breakers; Start runs it.
func NewBreakers(rdb *redis.Client, node string) *Breakers {
	return &Breakers{rdb: rdb, node: node, out: make(chan BreakerChange, 256), watchers: map[[2]string]*watch{}}
}

// Start subscribes to the other nodes' changes and starts the publisher.
// Close stops both.
func (b *Breakers) Start() {
	ctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	sub := b.rdb.Subscribe(ctx, breakerChannel)
	b.done.Add(2)
	go func() {
		defer b.done.Done()
		b.publish(ctx)
	}()
	go func() {
		defer b.done.Done()
		// go-redis resubscribes by itself after a lost connection.
		defer sub.Close()
		ch := sub.ChannelWithSubscriptions()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *redis.Subscription:
					b.subscribed.Store(m.Kind == "subscribe")
				case *redis.Message:
					b.deliver(m.Payload)
				}
			}
		}
	}()
}

// Close stops Start's goroutines and waits for them.
func (b *Breakers) Close() {
	if b.stop != nil {
		b.stop()
		b.done.Wait()
	}
}

func (b *Breakers) deliver(payload string) {
	var c BreakerChange
	if json.Unmarshal([]byte(payload), &c) != nil || c.Node == b.node {
		return
	}
	b.received.Add(1)
	b.mu.Lock()
	w := b.watchers[[2]string{c.Upstream, c.Endpoint}]
	b.mu.Unlock()
	if w != nil {
		w.fn(c)
	}
}

type watch struct{ fn func(BreakerChange) }

// Watch calls fn, on the subscriber's goroutine, with every change another
// node makes to the breaker of upstream's endpoint; fn must not block (an
// actor sends itself a message). A later Watch of the same endpoint (the
// breaker restarted) replaces it; the returned func removes it.
func (b *Breakers) Watch(upstream, endpoint string, fn func(BreakerChange)) (cancel func()) {
	k, w := [2]string{upstream, endpoint}, &watch{fn}
	b.mu.Lock()
	b.watchers[k] = w
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.watchers[k] == w { // not a later watch's
			delete(b.watchers, k)
		}
	}
}

// Publish sends this node's change to the others, without waiting: the
// changes go out in order on the publisher's goroutine. When Redis is so
// slow that 256 changes wait, new ones are dropped and counted.
func (b *Breakers) Publish(c BreakerChange) {
	c.Node = b.node
	select {
	case b.out <- c:
	default:
		b.dropped.Add(1)
	}
}

func (b *Breakers) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-b.out:
			if err := b.send(ctx, c); err != nil {
				b.failed.Add(1)
				continue
			}
			b.published.Add(1)
		}
	}
}

// send stores an opening under its endpoint's key until the probe is due
// (a closing deletes it, and the probe claim) and publishes the change, in
// one round trip.
func (b *Breakers) send(ctx context.Context, c BreakerChange) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, breakerTimeout)
	defer cancel()
	_, err = b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if c.State == BreakerOpen {
			p.Set(ctx, breakerKey(c.Upstream, c.Endpoint), payload, time.Duration(max(c.OpenFor, 1))*time.Millisecond)
		} else {
			p.Del(ctx, breakerKey(c.Upstream, c.Endpoint), probeKey(c.Upstream, c.Endpoint))
		}
		p.Publish(ctx, breakerChannel, payload)
		return nil
	})
	return err
}

// ClaimProbe claims the cluster's one half_open probe of upstream's
// endpoint for ttl (circuit_breaker_timeout: a node that dies with the
// claim frees it then). It reports whether this node got it; an error
// means Redis did not answer and the caller decides alone.
func (b *Breakers) ClaimProbe(upstream, endpoint string, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), breakerTimeout)
	defer cancel()
	return b.rdb.SetNX(ctx, probeKey(upstream, endpoint), b.node, max(ttl, time.Millisecond)).Result()
}

// Current returns the opening of upstream's endpoint in force in the
// cluster, if any, with OpenFor what is left of it now.
func (b *Breakers) Current(upstream, endpoint string) (BreakerChange, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), breakerTimeout)
	defer cancel()
	var get *redis.StringCmd
	var ttl *redis.DurationCmd
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		k := breakerKey(upstream, endpoint)
		get, ttl = p.Get(ctx, k), p.PTTL(ctx, k)
		return nil
	})
	if errors.Is(err, redis.Nil) || errors.Is(get.Err(), redis.Nil) {
		return BreakerChange{}, false, nil
	}
	if err != nil {
		return BreakerChange{}, false, err
	}
	var c BreakerChange
	if err := json.Unmarshal([]byte(get.Val()), &c); err != nil {
		return BreakerChange{}, false, err
	}
	if left := ttl.Val(); left > 0 {
		c.OpenFor = left.Milliseconds()
	}
	return c, c.State == BreakerOpen, nil
}

// BreakerCounts are the shared breakers' state and counters, for /metrics.
type BreakerCounts struct {
	Subscribed bool   `json:"subscribed"` // Redis confirmed the subscription (not cleared by a lost connection: see redis_up)
	Published  uint64 `json:"published"`
	Received   uint64 `json:"received"`
	Failed     uint64 `json:"publish_failures"`
	Dropped    uint64 `json:"dropped"`
}

// Counts returns the counters.
func (b *Breakers) Counts() BreakerCounts {
	return BreakerCounts{
		Subscribed: b.subscribed.Load(), Published: b.published.Load(), Received: b.received.Load(),
		Failed: b.failed.Load(), Dropped: b.dropped.Load(),
	}
}
