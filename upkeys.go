package deer

import (
	"fmt"
	"maps"
	"slices"

	"github.com/rs/zerolog"

	"github.com/deer-runtime/deer/actors/worker"
	"github.com/deer-runtime/deer/conf"
	"github.com/deer-runtime/deer/internal/metricname"
	"github.com/deer-runtime/deer/messages"
)

// missingKeys maps every upstream whose api_key_env names a variable that
// is unset or empty to that variable's name. It is read once, at start: a
// process's environment does not change under it, so a key exported later
// needs a restart, and deer says so rather than pretend otherwise.
func missingKeys(cfg *conf.Config, getenv func(string) string) map[string]string {
	var missing map[string]string
	for _, name := range sortedKeys(cfg.Upstreams) {
		env := cfg.Upstreams[name].APIKeyEnv
		if env == "" || getenv(env) != "" {
			continue
		}
		if missing == nil {
			missing = map[string]string{}
		}
		missing[name] = env
	}
	return missing
}

// keyMissingMessage is the one explanation of a keyless upstream, in the
// start-up warning, the 503 and /health alike.
func keyMissingMessage(upstream, env string) string {
	return fmt.Sprintf("upstream %s needs %s, which is not set", upstream, env)
}

// warnMissingKeys logs one warning per keyless upstream at start.
func warnMissingKeys(log zerolog.Logger, missing map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		log.Warn().Str("upstream", name).Str("api_key_env", missing[name]).
			Msgf("%s: it is not warmed and its calls are answered 503 %s; set it and restart", keyMissingMessage(name, missing[name]), messages.CodeKeyMissing)
	}
}

// refuseKeyless answers a task for an upstream without its key at once, at
// the door: without queueing, a worker, a limiter token or a dial, so the
// caller learns what to fix instead of waiting out retries against an
// upstream that will refuse it. nil when the task may go on.
func (rt *Runtime) refuseKeyless(task *messages.Task) *messages.TaskResult {
	env, missing := rt.keyless[task.Upstream]
	if !missing {
		return nil
	}
	rt.set.GetOrCreateCounter("deer_upstream_key_missing_total" + metricname.Labels("upstream", task.Upstream)).Inc()
	return worker.Failed(task, messages.CodeKeyMissing, keyMissingMessage(task.Upstream, env))
}
