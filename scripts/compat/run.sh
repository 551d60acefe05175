#!/usr/bin/env bash
# Runs the official OpenAI SDK and LangChain's ChatOpenAI (from npm) against
# a deerd started on conf/deer.toml (its built-in simulator answers).
# Needs node and npm. Usage: scripts/compat/run.sh (from the repository root).
set -euo pipefail
cd "$(dirname "$0")/../.."
addr=127.0.0.1:18000
make build >/dev/null
data=$(mktemp -d)
DEER_L3_PATH="$data" ./bin/deerd --config conf/deer.toml --addr "$addr" 2>"$data/deerd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  curl -sf "http://$addr/health/ready" >/dev/null && break
  sleep 0.1
done
cd scripts/compat
npm install --no-audit --no-fund --silent
DEER_BASE_URL="http://$addr/v1" node check.mjs
