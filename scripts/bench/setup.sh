#!/usr/bin/env bash
# Installs what `make bench` needs and is missing: nginx and taskset from
# Debian's packages, and Portkey's gateway (@portkey-ai/gateway, pinned) from
# npm into .bench/portkey when npm is present. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "bench setup: apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

portkey=.bench/portkey
if command -v npm >/dev/null; then
  if [ ! -f "$portkey/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
    echo "bench setup: npm install @portkey-ai/gateway@1.15.2"
    mkdir -p "$portkey"
    npm install --prefix "$portkey" --no-audit --no-fund --silent @portkey-ai/gateway@1.15.2
  fi
else
  echo "bench setup: npm not found; Portkey will be left out"
fi
