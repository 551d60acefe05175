#!/usr/bin/env bash
# The HTTP-stack A/B of issue 12 (docs/benchmarks.md, "HTTP stack: net/http
# vs fasthttp (A/B)"): deerab in four variants (A net/http, B fasthttp
# ingress, C fasthttp ingress + upstream client, D fasthttp upstream client),
# each on CPU 0 with GOMAXPROCS=1, deerload and deersim on CPU 1.
#   open loop: RATES × REPS × variants, the variants taking turns (order
#              rotated each repetition), deersim latency 60ms; CPU of the
#              deerab process from /proc/PID/stat (utime+stime) over the run.
#   sequential: deerload rounds, direct and the four variants request by
#              request, deersim latency 0.
# Output: one JSON line per step in $OUT/steps.jsonl, rounds in $OUT/rounds-N.json.
# Usage: scripts/httpab/run.sh   (RATES="1000 2000" REPS=3 DURATION=10s WARMUP=3s)
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=${RATES:-"1000 2000"}
REPS=${REPS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
ROUNDS_REPS=${ROUNDS_REPS:-3}
OUT=${OUT:-.httpab}
mkdir -p "$OUT/bin"
go build -o "$OUT/bin/" ./cmd/deersim ./cmd/deerload
(cd internal/httpab && go build -o "../../$OUT/bin/" ./cmd/deerab)
BIN=$OUT/bin
BODY='{"model":"sim-model","messages":[{"role":"user","content":"Say hello."}]}'
HDR='Authorization: Bearer sk-bench'

conf() { # conf NAME SIMPORT
  cat > "$OUT/$1.toml" <<TOML
default_upstream = "sim"
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
l3_path = "$PWD/$OUT/data-$1"
[upstreams.sim]
base_url = "http://127.0.0.1:$2"
models = ["sim-model"]
timeout = 30.0
TOML
  rm -rf "$OUT/data-$1"
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://$1/" && return 0; sleep 0.1; done; echo "no answer on $1" >&2; exit 1; }

taskset -c 1 "$BIN/deersim" --addr 127.0.0.1:9690 --latency 60ms 2>"$OUT/sim60.log" & pids+=($!)
taskset -c 1 "$BIN/deersim" --addr 127.0.0.1:9691 --latency 0s 2>"$OUT/sim0.log" & pids+=($!)
wait_up 127.0.0.1:9690; wait_up 127.0.0.1:9691

declare -A ING=([A]=net [B]=fast [C]=fast [D]=net) UPS=([A]=net [B]=net [C]=fast [D]=fast) PORT=([A]=9601 [B]=9602 [C]=9603 [D]=9604)
declare -A PID
start_variants() { # start_variants SIMPORT PORTOFFSET
  for v in A B C D; do
    conf "$v-$1" "$1"
    GOMAXPROCS=1 taskset -c 0 "$BIN/deerab" --config "$OUT/$v-$1.toml" --addr "127.0.0.1:$((PORT[$v] + $2))" \
      --ingress "${ING[$v]}" --upstream "${UPS[$v]}" 2>"$OUT/deerab-$v-$1.log" & PID[$v]=$!; pids+=($!)
  done
  for v in A B C D; do wait_up "127.0.0.1:$((PORT[$v] + $2))"; done
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks (1/100 s)

# Sequential added latency: deersim at once, direct first.
start_variants 9691 100
for r in $(seq "$ROUNDS_REPS"); do
  taskset -c 1 "$BIN/deerload" rounds --body "$BODY" --header "$HDR" --warmup 15 --rounds 7 --per-round 25 --timeout 10s \
    --url http://127.0.0.1:9691/v1/chat/completions \
    $(for v in A B C D; do echo --url "http://127.0.0.1:$((PORT[$v] + 100))/v1/chat/completions"; done) --json > "$OUT/rounds-$r.json"
done

# Open loop.
start_variants 9690 0
order=(A B C D)
: > "$OUT/steps.jsonl"
for rep in $(seq "$REPS"); do
  for rate in $RATES; do
    for v in "${order[@]}"; do
      url="http://127.0.0.1:${PORT[$v]}/v1/chat/completions"
      taskset -c 1 "$BIN/deerload" rate --url "$url" --body "$BODY" --header "$HDR" --rate "$rate" --duration "$WARMUP" --timeout 10s --json > /dev/null
      c0=$(cpu "${PID[$v]}")
      res=$(taskset -c 1 "$BIN/deerload" rate --url "$url" --body "$BODY" --header "$HDR" --rate "$rate" --duration "$DURATION" --timeout 10s --json)
      c1=$(cpu "${PID[$v]}")
      echo "$res" | jq -c --arg v "$v" --argjson rep "$rep" --argjson rate "$rate" --argjson ticks "$((c1 - c0))" \
        '{variant:$v, rep:$rep, rate:$rate, success_pct, achieved_rate, sent, cpu_s_per_1k: ($ticks/100/(.sent/1000)),
          p50_added_ms: ((.latency_us.p50 - 60000)/1000), p99_added_ms: ((.latency_us.p99 - 60000)/1000), load1: 0}' \
        | jq -c --arg l "$(cut -d' ' -f1 /proc/loadavg)" '.load1 = ($l|tonumber)' | tee -a "$OUT/steps.jsonl"
    done
    order=("${order[@]:1}" "${order[0]}")
  done
done
