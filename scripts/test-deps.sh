#!/usr/bin/env bash
# Installs what `make test` needs beyond Go, from Debian packages:
#   - a headless browser (chromium) for the dashboard's browser test
#     (httpapi/dashboard);
#   - redis-server, the real Redis the multi-node tests start on private
#     ports (internal/redistest; docs/cluster.md).
# Without them those tests skip, unless DEER_REQUIRE_BROWSER=1 and
# DEER_REQUIRE_REDIS=1 (set by .ci/run). Runs apt-get, so as root (or with
# sudo available); installs only what is missing. Neither package is left
# running: tests start redis-server themselves and stop it afterwards.
set -euo pipefail

need=()
browser=""
for b in chromium chromium-browser google-chrome google-chrome-stable; do
	if command -v "$b" >/dev/null 2>&1; then
		browser=$(command -v "$b")
		break
	fi
done
if [ -n "$browser" ]; then
	echo "test-deps: browser $browser is installed"
else
	need+=(chromium)
fi
if command -v redis-server >/dev/null 2>&1; then
	echo "test-deps: redis-server is installed ($(redis-server --version | cut -d' ' -f3))"
else
	need+=(redis-server)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: no apt-get here; install ${need[*]} yourself (or set DEER_CHROMIUM / DEER_REDIS_SERVER)" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "test-deps: installing ${need[*]} needs root (or sudo)" >&2
		exit 1
	fi
	sudo="sudo"
fi
echo "test-deps: installing ${need[*]} with apt-get"
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
# The package's service is not wanted: tests run their own servers. Where
# an init system started it, stop it (a container without one never does).
if [[ " ${need[*]} " == *" redis-server "* ]]; then
	$sudo service redis-server stop >/dev/null 2>&1 || true
fi
command -v redis-server >/dev/null
