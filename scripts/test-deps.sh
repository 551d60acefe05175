#!/usr/bin/env bash
# Installs what `make test` needs beyond Go: a headless browser (Debian's
# chromium) for the dashboard's browser test (httpapi/dashboard). Without
# one that test skips, unless DEER_REQUIRE_BROWSER=1 (set by .ci/run).
# Runs apt-get, so as root (or with sudo available); does nothing when a
# browser is already installed.
set -euo pipefail

for b in chromium chromium-browser google-chrome google-chrome-stable; do
	if command -v "$b" >/dev/null 2>&1; then
		echo "test-deps: $b is installed ($(command -v "$b"))"
		exit 0
	fi
done

if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: no apt-get here; install Chromium or Chrome yourself (or set DEER_CHROMIUM=/path/to/browser)" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "test-deps: installing chromium needs root (or sudo)" >&2
		exit 1
	fi
	sudo="sudo"
fi
echo "test-deps: installing chromium with apt-get"
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
command -v chromium >/dev/null
