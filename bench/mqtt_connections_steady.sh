#!/usr/bin/env bash
# Many device connections in the steady state: N connections (default 10,000) publishing QoS 1
# at each given total rate for 25 s; over 10 s in the middle the server's CPU per stored message
# (from /proc, messages from /metrics), and PUBACK (= durable) percentiles with the first 8 s
# left out. FIELDLINE_BIN=OLD_BINARY runs another build, to compare in turn on one machine.
#   bench/mqtt_connections_steady.sh [connections] [total msg/s ...]   (default 10000 20000 30000)
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-10000}"
shift || true
rates=("$@")
[[ ${#rates[@]} -gt 0 ]] || rates=(20000 30000)
tools/setup.sh
tools/build.sh release >/dev/null
source bench/fieldline.sh
work=$(mktemp -d /tmp/fl-bench-steady.XXXXXX)
fl_pid=""
cleanup() { [[ -n "$fl_pid" ]] && kill "$fl_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start_fieldline "$work"
register_devices "$conns" fleet "$work/creds"
stored() {
  curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$fl_http/metrics" |
    awk '/^fieldline_messages_accepted_total/ {s += $2} END {print s}'
}
for rate in "${rates[@]}"; do
  build/release/fieldline-loadgen --port "$fl_mqtt" --connections "$conns" --qos 1 --rate "$rate" --duration 25 --warmup 8 \
    --credentials "$work/creds" --threads 2 > "$work/load.json" &
  lg=$!
  sleep 8
  c0=$(cpu_ticks "$fl_pid"); m0=$(stored); t0=$(date +%s.%N)
  sleep 10
  c1=$(cpu_ticks "$fl_pid"); m1=$(stored); t1=$(date +%s.%N)
  wait "$lg" || true
  python3 - "$work/load.json" "$c0" "$c1" "$m0" "$m1" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[8])
m, t = float(sys.argv[5]) - float(sys.argv[4]), float(sys.argv[7]) - float(sys.argv[6])
print(f"{r['connections']} connections, target {r['target_rate']:.0f} msg/s: {m / t:.0f} msg/s stored; PUBACK p50 "
      f"{r['latency_ms_p50']:.1f} ms, p99 {r['latency_ms_p99']:.1f} ms; server {cpu * 1e6 / max(m, 1):.1f} us/msg "
      f"({cpu / t:.2f} cores); generator {r['loadgen_cpu_us_per_msg']:.1f} us/msg")
PY
done
