// Package cluster is what makes deerd one node of several: the Redis
// connection every shared piece uses (this file), and the node's identity
// and membership. Redis is the shared memory; nodes stay actor systems and
// keep working on local state when Redis is gone (docs/cluster.md).
package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Timeouts of the shared connection. Redis is on the call path of leases
// and breaker changes, so a slow or gone Redis must fail fast and let the
// node fall back to local state rather than hold calls up.
const (
	dialTimeout = time.Second
	ioTimeout   = 500 * time.Millisecond
)

func init() {
	// go-redis logs dial failures on its own, unstructured, once per
	// attempt; deer logs Redis going away and coming back itself (the
	// cluster actor and the limiters), once per change.
	redis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Dial returns a client of the Redis at url (cluster.redis_url). It does
// not connect: go-redis connects on first use and reconnects by itself, so
// a node starts, and serves on local state, while Redis is down.
func Dial(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis_url: %w", err)
	}
	opt.DialTimeout = dialTimeout
	opt.ReadTimeout = ioTimeout
	opt.WriteTimeout = ioTimeout
	opt.MaxRetries = 1
	// The client's own maintenance notifications and identity checks are
	// for Redis Enterprise; a plain redis-server answers them with errors.
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(opt), nil
}

// Key is a Redis key of deer's: "deer:" followed by parts joined by ":".
// Every key deer writes starts so, so that one Redis can serve other
// applications too.
func Key(parts ...string) string {
	return "deer:" + strings.Join(parts, ":")
}
