#!/usr/bin/env bash
# Runs the official OpenAI SDK and LangChain's ChatOpenAI (from npm) against
# a deerd of its own started on conf/deer.toml (its built-in simulator
# answers). That deerd has its own ephemeral port and its own L3 store in a
# temporary directory, so this works beside a `make run`. On any failure it
# says what failed and prints deerd's log. Needs node and npm.
# Usage: scripts/compat/run.sh (from the repository root).
set -euo pipefail
cd "$(dirname "$0")/../.."
make build >/dev/null
data=$(mktemp -d)
log="$data/deerd.log"
pid=

finish() {
  local status=$?
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    echo "compat: FAILED (exit $status); deerd's log follows:" >&2
    if [ -s "$log" ]; then sed 's/^/  deerd| /' "$log" >&2; else echo "  (empty)" >&2; fi
  fi
  rm -rf "$data"
  exit "$status"
}
trap finish EXIT

# Port 0: the kernel picks a free port, which deerd logs ("deerd listening").
DEER_L3_PATH="$data/cache" ./bin/deerd --config conf/deer.toml --addr 127.0.0.1:0 2>"$log" &
pid=$!
addr=
for _ in $(seq 300); do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" && code=0 || code=$?
    pid=
    echo "compat: deerd exited (code $code) before it was ready" >&2
    exit 1
  fi
  addr=$(grep '"message":"deerd listening"' "$log" | sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' | head -n 1 || true)
  if [ -n "$addr" ] && curl -sf "http://$addr/health/ready" >/dev/null; then
    break
  fi
  addr=
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "compat: deerd was not ready within 30 s" >&2
  exit 1
fi
echo "compat: deerd on $addr"

cd scripts/compat
npm install --prefer-offline --no-audit --no-fund --silent || { echo "compat: npm install failed" >&2; exit 1; }
DEER_BASE_URL="http://$addr/v1" node check.mjs || { echo "compat: the SDK checks failed against deerd on $addr" >&2; exit 1; }
