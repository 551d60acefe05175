package deer_test

import (
	"context"
	"fmt"
	"os"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
)

// ExampleStart runs the actor system and its supervision tree without HTTP,
// asks it how it is, and stops it.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "deer-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := conf.Default()
	cfg.Cache.L3Path = dir // the persistent cache tier lives here

	ctx := context.Background()
	rt, err := deer.Start(ctx, cfg)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	fmt.Println("status:", rt.Health(ctx).Status)
	fmt.Println("max_workers:", rt.Config().ParallelExecution.MaxWorkers)
	if err := rt.Stop(ctx); err != nil {
		fmt.Println("stop:", err)
	}
	// Output:
	// status: healthy
	// max_workers: 20
}
