package chaos

import (
	"fmt"
	"time"
)

// FaultInjectionEnv is the environment setting that opens /faults on the
// drill's deerd (SPEC §9), without debug_mode's console logs and pprof.
const FaultInjectionEnv = "DEER_FAULT_INJECTION=true"

// DeerdConfig is the TOML configuration of the drill's deerd, listening on
// addr in front of deersim at simURL, its L3 store under l3Path. Settings
// differ from conf/deer.toml only where the drill needs them; fault
// injection itself comes from FaultInjectionEnv.
func DeerdConfig(addr, simURL, l3Path string, p Plan) string {
	return fmt.Sprintf(`# deerd under make chaos. Settings differ from conf/deer.toml only where the
# drill needs them; /faults is enabled by DEER_FAULT_INJECTION=true.
default_upstream = "sim"

[server]
addr = %q

[connection_pool]
max_connections = 256
initial_connections = 4

[batch_processing]
# Embeddings are micro-batched (the upstream below says so); a short
# timeout keeps a sparse batch from adding 1.5 s at the drill's rates.
batch_size = 10
batch_timeout = 0.25

[cache]
# Sizes and TTL at their defaults; the L3 store of an earlier run is removed.
l3_path = %q

[rate_limit]
# High enough never to pace the drill: its failures are the faults'.
initial_rate = 100000.0
max_rate = 100000.0
burst_allowance = 10000

[error_recovery]
# Retries that fit in the drill: at most 2, 50 ms doubling to 0.5 s.
max_retries = 2
base_delay = 0.05
max_delay = 0.5
# An endpoint opened by the 5xx burst is probed again after 2 s.
circuit_breaker_timeout = 2.0

[parallel_execution]
max_workers = 128
queue_size = 10000
# A task whose message a fault dropped is failed by the router's watchdog
# after worker_timeout (+1 s): within the drill's grace period.
worker_timeout = %s
health_check_interval = 2.0

[monitoring]
detailed_logging = false

[upstreams.sim]
base_url = %q
models = ["sim-model", "sim-embed"]
cache = "auto"
batch = "openai-embeddings"
# Per attempt: a hung call ends after it.
timeout = %s
`, addr, l3Path, seconds(p.WorkerTimeout), simURL, seconds(p.UpstreamTimeout))
}

// seconds writes d as a TOML float of seconds.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1f", d.Seconds())
}
