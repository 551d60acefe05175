package bench

import (
	"fmt"
	"os"
	"path/filepath"
)

// DeerdWorkers and DeerdConnections size deerd for the bench: the defaults
// (20 workers, 10–100 req/s) are sized for LLM providers, which would pace a
// 5,000 req/s run. 5,000 req/s × 60 ms is 300 calls in flight.
const (
	DeerdWorkers     = 512
	DeerdConnections = 512
	DeerdRate        = 100000
)

// writeDeerdConf writes deerd's bench configuration and returns its text
// and path. The cache and batch_processing keep their defaults: Phase C
// measures them as shipped. The L3 store left by an earlier run is removed,
// so that the run starts with a cold cache.
func writeDeerdConf(work, addr, simAddr string) (string, string, error) {
	conf := fmt.Sprintf(`# deerd under make bench. Settings differ from conf/deer.toml only where
# the defaults, sized for LLM providers, would pace the benchmark.
default_upstream = "sim"

[server]
addr = %q

[connection_pool]
max_connections = %d

[rate_limit]
initial_rate = %d.0
max_rate = %d.0
burst_allowance = %d

[parallel_execution]
max_workers = %d
queue_size = 100000

[monitoring]
# One log line per task is off, as nginx's access_log is.
detailed_logging = false

[cache]
# Sizes and TTL at their defaults (l1 1000, l2 5000, l3 10000 entries).
l3_path = %q

[upstreams.sim]
base_url = "http://%s"
models = ["sim-model"]
timeout = 30.0
# As in conf/deer.toml: /v1/embeddings calls are micro-batched
# (batch_processing at its defaults: 10 inputs, 1.5 s).
batch = "openai-embeddings"
`, addr, DeerdConnections, DeerdRate, DeerdRate, DeerdRate/10, DeerdWorkers,
		l3Path(work), simAddr)
	if err := os.RemoveAll(l3Path(work)); err != nil {
		return "", "", err
	}
	path := filepath.Join(work, "deerd.toml")
	return conf, path, os.WriteFile(path, []byte(conf), 0o644)
}

// l3Path is where the bench's deerd keeps its L3 store.
func l3Path(work string) string { return filepath.Join(work, "data", "cache") }

// writeNginxConf writes nginx.conf under work/nginx (its prefix) and
// returns its text: one worker, a plain proxy_pass with upstream keep-alive,
// no access log.
func writeNginxConf(work, addr, simAddr string) (string, error) {
	prefix := filepath.Join(work, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`worker_processes 1;
pid nginx.pid;
error_log logs/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    upstream sim {
        server %s;
        keepalive 512;
    }
    server {
        listen %s backlog=4096;
        location / {
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, simAddr, addr)
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return "", err
	}
	return conf, os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(conf), 0o644)
}
