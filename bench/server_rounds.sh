#!/usr/bin/env bash
# One fieldline server loaded in successive rounds (QoS 1, 100 connections, unpaced): rate,
# server CPU per message and resident memory after each round, to see whether the server
# slows or grows as its data does. FIELDLINE_BIN / FIELDLINE_ENV (bench/fieldline.sh) pick
# the build and the server's environment; arguments after the first two go to `serve`.
#   bench/server_rounds.sh [rounds, default 4] [seconds per round, default 8] [serve arguments...]
# e.g. bench/server_rounds.sh 4 8 --set ingest.raw_log=off
#      FIELDLINE_BIN=build/release-glibc/fieldline bench/server_rounds.sh 2
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-4}"
secs="${2:-8}"
shift $(( $# < 2 ? $# : 2 ))
tools/setup.sh
tools/build.sh release --target fieldline-loadgen >/dev/null
source bench/fieldline.sh
bench_server rounds "$@"
hz=$(getconf CLK_TCK)
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F); ${FIELDLINE_BIN:-build/release/fieldline} ${FIELDLINE_ENV:-} $*"
echo
echo "| round | msg/s | server CPU µs/msg | RSS after, MiB |"
echo "|---|---|---|---|"
for r in $(seq "$rounds"); do
  c0=$(cpu_ticks "$fl_pid")
  out=$(build/release/fieldline-loadgen --port "$fl_mqtt" --connections 100 --qos 1 --duration "$secs" --credentials "$work/creds")
  c1=$(cpu_ticks "$fl_pid")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$fl_pid/status")
  python3 - "$r" "$out" "$c0" "$c1" "$hz" "$rss" <<'PY'
import json, sys
r, o, c0, c1, hz, rss = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:])
print(f"| {r} | {o['rate']:,.0f} | {(c1 - c0) / hz * 1e6 / max(o['acked'], 1):.2f} | {rss / 1024:.0f} |")
PY
done
