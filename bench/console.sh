#!/usr/bin/env bash
# The operator console's targets (issue #8): fleet page first paint with 10,000 devices
# registered (< 1 s), a device chart of 86,400 points (< 200 ms), static assets gzipped
# (< 300 KB). Headless Debian Chromium through playwright-core; prints a JSON line and saves it
# under bench/results/.
#   bench/console.sh [devices, default 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --bench
tools/build.sh release --target fieldline >/dev/null
machine="$(nproc) cores $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
out=$(node bench/console.mjs "${1:-10000}")
mkdir -p bench/results
line=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["machine"]=sys.argv[2]; d["date"]=sys.argv[3]; print(json.dumps(d))' "$out" "$machine" "$(date -u +%FT%TZ)")
echo "$line" | tee "bench/results/console-$(date -u +%Y%m%dT%H%M).json"
