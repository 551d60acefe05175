#!/usr/bin/env bash
# One open-loop step of issue 12's tail study (docs/benchmarks.md, "Where the
# tail at 3,000 req/s comes from"): MODE (direct | nginx | deerd) in front of
# deersim (60 ms), RATE req/s for DUR after a 3 s warm-up. The proxy runs on
# CPU 0 (deerd with GOMAXPROCS 1), deersim and deerload on CPU 1, all at nice
# -20 (run as root) so that other work on the machine does not steal their
# CPU. Prints ok %, added latency (minus the 60 ms), deerload's own send lag,
# the proxy's CPU per 1k requests and its peak RSS.
#
#   make build && for m in direct nginx deerd; do scripts/bench/tail.sh $m 3000 10s; done
#
# Extra arguments are env settings for deerd (GOGC=200, GOMEMLIMIT=64MiB).
set -euo pipefail
MODE=$1 RATE=$2 DUR=$3
shift 3
cd "$(dirname "$0")/../.."
work=.bench/tail
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat >"$work/deerd.toml" <<TOML
[server]
addr = "127.0.0.1:9503"
[connection_pool]
max_connections = 512
[rate_limit]
initial_rate = 100000.0
max_rate = 100000.0
burst_allowance = 10000
[parallel_execution]
max_workers = 512
queue_size = 100000
[monitoring]
detailed_logging = false
[cache]
l3_path = "$PWD/$work/data"
[upstreams.sim]
base_url = "http://127.0.0.1:9501"
models = ["sim-model"]
timeout = 30.0
TOML
cat >"$work/nginx/nginx.conf" <<'NGINX'
worker_processes 1;
pid nginx.pid;
daemon off;
master_process off;
error_log logs/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    upstream sim { server 127.0.0.1:9501; keepalive 512; }
    server {
        listen 127.0.0.1:9504 backlog=4096;
        location / { proxy_pass http://sim; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
NGINX
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
pin() { exec nice -n -20 taskset -c "$@"; }
pin 1 bin/deersim --addr 127.0.0.1:9501 --latency 60ms >"$work/sim.log" 2>&1 &
pids+=($!); proxy=$!
url=http://127.0.0.1:9501/v1/chat/completions
case $MODE in
direct) ;;
nginx)
	pin 0 nginx -p "$PWD/$work/nginx" -c nginx.conf >"$work/nginx.log" 2>&1 &
	pids+=($!); proxy=$!; url=http://127.0.0.1:9504/v1/chat/completions ;;
deerd)
	env GOMAXPROCS=1 "$@" nice -n -20 taskset -c 0 bin/deerd --config "$work/deerd.toml" >"$work/deerd.log" 2>&1 &
	pids+=($!); proxy=$!; url=http://127.0.0.1:9503/v1/chat/completions ;;
*) echo "tail.sh: MODE must be direct, nginx or deerd" >&2; exit 2 ;;
esac
for _ in $(seq 100); do curl -s -o /dev/null "${url%/v1/*}/" && break; sleep 0.05; done
body='{"model":"sim-model","messages":[{"role":"user","content":"hello"}]}'
(pin 1 bin/deerload rate --url "$url" --body "$body" --rate "$RATE" --duration 3s >/dev/null 2>&1) || true
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$proxy/stat)
(pin 1 bin/deerload rate --url "$url" --body "$body" --rate "$RATE" --duration "$DUR" --json >"$work/load.json" 2>/dev/null) || true
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$proxy/stat)
rss=$(awk '/VmHWM/ {print $2}' /proc/$proxy/status)
python3 - "$MODE" "$RATE" $u0 $s0 $u1 $s1 "$rss" "$work/load.json" <<'PY'
import json, sys
mode, rate = sys.argv[1], float(sys.argv[2])
u0, s0, u1, s1 = map(int, sys.argv[3:7])
j = json.load(open(sys.argv[8]))
lat, n = j.get("latency_us", {}), j.get("sent", 0) or 1
cpu = (u1 - u0 + s1 - s0) / 100
who = "deersim" if mode == "direct" else mode
print(f"{mode} {rate:.0f} req/s: ok {j.get('success_pct')}% p50 {lat.get('p50', 0)/1000-60:.2f} ms "
      f"p99 {lat.get('p99', 0)/1000-60:.2f} ms p99.9 {lat.get('p99_9', 0)/1000-60:.2f} ms "
      f"maxlag {j.get('max_send_lag_us', 0)/1000:.1f} ms {who} CPU {cpu/(n/1000):.3f} s/1k peak RSS {int(sys.argv[7])//1024} MB")
PY
