#!/usr/bin/env bash
# Where fieldline's CPU goes with many device connections: N connections (default 10,000)
# publishing QoS 1 at a paced total rate (default 50,000 msg/s) for 25 s; `perf record` samples
# the server for 10 s in the middle (timer sampling: no hardware counters needed) and the top
# symbols are printed with the loadgen's report.
#   bench/profile_many_connections.sh [connections] [total msg/s]
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-10000}"
rate="${2:-50000}"
tools/setup.sh --bench
tools/build.sh release >/dev/null
source bench/fieldline.sh
work=$(mktemp -d /tmp/fl-bench-prof.XXXXXX)
fl_pid=""
cleanup() { [[ -n "$fl_pid" ]] && kill "$fl_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start_fieldline "$work"
register_devices "$conns" fleet "$work/creds"
build/release/fieldline-loadgen --port "$fl_mqtt" --connections "$conns" --qos 1 --rate "$rate" --duration 25 \
  --credentials "$work/creds" --threads 2 > "$work/load.json" &
lg=$!
sleep 10
perf record -F 499 -g -p "$fl_pid" -o "$work/perf.data" -- sleep 10 >/dev/null 2>&1
wait "$lg" || true
cat "$work/load.json"
perf report -i "$work/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9.]+%' | cut -c1-120 | head -30
