package deer_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/sim"
)

// ExampleRuntime_ResolveModel routes model names: configured models, the
// models an upstream lists itself (its GET /v1/models, asked through the
// task path when a name needs it), "NAME/model", and nothing else.
func ExampleRuntime_ResolveModel() {
	together := httptest.NewServer(sim.New(sim.DefaultKnobs(), sim.WithModels("meta-llama/Llama-3-70b")))
	defer together.Close()
	mine := httptest.NewServer(sim.New(sim.DefaultKnobs(), sim.WithModels("my-model")))
	defer mine.Close()
	dir, _ := os.MkdirTemp("", "deer-example-")
	defer os.RemoveAll(dir)
	cfg := conf.Default()
	cfg.Cache.L3Path = dir
	cfg.ConnectionPool.InitialConnections = 0
	cfg.Monitoring.DetailedLogging = false
	local := conf.NewUpstream(mine.URL)
	local.Models = []string{"my-model"}
	cfg.Upstreams = map[string]conf.Upstream{"together": conf.NewUpstream(together.URL), "local": local}

	ctx := context.Background()
	rt, err := deer.Start(ctx, cfg, deer.WithLogger(zerolog.Nop(), nil))
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer rt.Stop(ctx)

	for _, model := range []string{"my-model", "meta-llama/Llama-3-70b", "together/anything", "gpt-4.1"} {
		upstream, upstreamModel, ok := rt.ResolveModel(ctx, model)
		fmt.Printf("%s → %q %q %v\n", model, upstream, upstreamModel, ok)
	}
	for _, m := range rt.Models(ctx) {
		fmt.Println("listed:", m.ID, "on", m.Upstream)
	}
	// Output:
	// my-model → "local" "my-model" true
	// meta-llama/Llama-3-70b → "together" "meta-llama/Llama-3-70b" true
	// together/anything → "together" "anything" true
	// gpt-4.1 → "" "" false
	// listed: my-model on local
	// listed: meta-llama/Llama-3-70b on together
}
