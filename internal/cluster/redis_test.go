package cluster_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/deer-runtime/deer/internal/cluster"
	"github.com/deer-runtime/deer/internal/redistest"
)

func TestDialTalksToRedisAndFailsFastWithoutIt(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := redistest.Start(t)
	c, err := cluster.Dial(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, cluster.Key("test", "k"), "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := srv.Client().Get(ctx, "deer:test:k").Val(); got != "v" {
		t.Fatalf("deer:test:k = %q", got)
	}
	srv.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered with Redis killed")
	}
}

func TestDialRejectsABadURL(t *testing.T) {
	if _, err := cluster.Dial("redis://127.0.0.1:6379/notadb"); err == nil {
		t.Fatal("Dial accepted a database that is not a number")
	}
}
