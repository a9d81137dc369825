#!/usr/bin/env bash
# 10,000 device connections at 10 messages/s each (QoS 1) against fieldline: PUBACK (= durable)
# latency percentiles, and resident memory per idle authenticated connection.
#   bench/mqtt_many_connections.sh [connections, default 10000] [msg/s per connection, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-10000}"
per="${2:-10}"
tools/setup.sh
tools/build.sh release >/dev/null
source bench/fieldline.sh
work=$(mktemp -d /tmp/fl-bench-conns.XXXXXX)
fl_pid=""
cleanup() { [[ -n "$fl_pid" ]] && kill "$fl_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start_fieldline "$work"
echo "$(date +%T) registering $conns devices" >&2
register_devices "$conns" fleet "$work/creds"
rss() { awk '/VmRSS/ {print $2}' "/proc/$fl_pid/status"; }
before=$(rss)
echo "$(date +%T) connecting $conns idle clients" >&2
# Idle: connect everything, send almost nothing for 8 s, measure RSS while connected.
build/release/fieldline-loadgen --port "$fl_mqtt" --connections "$conns" --qos 1 --rate 1 --duration 20 \
  --credentials "$work/creds" --threads 2 > "$work/idle.json" &
lg=$!
for _ in $(seq 150); do
  open=$(curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$fl_http/metrics" | awk '/^fieldline_mqtt_connections / {print $2}')
  [[ "${open:-0}" -ge "$conns" ]] && break
  sleep 0.1
done
sleep 1
during=$(rss)
wait "$lg" || true
echo "idle connections: ${open:-?} of $conns open, RSS before ${before} KiB, while connected ${during} KiB, $(( (during - before) * 1024 / conns )) bytes per connection"
echo "$(date +%T) load: $conns connections at $per msg/s each" >&2
cpu_before=$(cpu_ticks "$fl_pid")
# The first 5 s (10,000 devices connecting, the server's first sight of 50,000 series) are left
# out of the latency percentiles, not out of the rate or the CPU.
build/release/fieldline-loadgen --port "$fl_mqtt" --connections "$conns" --qos 1 --rate $((conns * per)) --duration 20 \
  --warmup 5 --credentials "$work/creds" --threads 2 | tee "$work/load.json"
python3 - "$work/load.json" "$cpu_before" "$(cpu_ticks "$fl_pid")" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cpu_s = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
print(f"server CPU {cpu_s:.1f} s for {r['acked']} messages: {cpu_s * 1e6 / max(r['acked'], 1):.1f} us per message "
      f"(connection setup included); p99 PUBACK (= durable) after the warm-up {r['latency_ms_p99']:.1f} ms at {r['rate']:.0f} msg/s")
PY
