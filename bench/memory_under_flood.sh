#!/usr/bin/env bash
# Where fieldline's memory goes under a flood: N device connections (default 10,000) sending as
# fast as they can for 8 s at QoS Q (default 0); once a second it prints the resident memory,
# the open connections and the samples stored, until the load generator is done.
#   bench/memory_under_flood.sh [connections] [qos] [serve --set options...]
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-10000}"
qos="${2:-0}"
tools/setup.sh
tools/build.sh release --target fieldline fieldline-loadgen >/dev/null
source bench/fieldline.sh
bench_workdir flood
start_fieldline "$work" --set mqtt.receive_maximum=65535 "${@:3}"
pids+=("$fl_pid")
register_devices "$conns" f "$work/creds"
metric() { curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$fl_http/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
echo "registered $conns devices: RSS $(awk '/VmRSS/ {print $2}' "/proc/$fl_pid/status") KiB"
build/release/fieldline-loadgen --port "$fl_mqtt" --connections "$conns" --qos "$qos" --duration 8 --threads 2 \
  --credentials "$work/creds" > "$work/load.json" &
lg=$!
while kill -0 "$lg" 2>/dev/null; do
  echo "$(date +%T) RSS $(awk '/VmRSS/ {print $2}' "/proc/$fl_pid/status") KiB, $(metric fieldline_mqtt_connections) connections, $(metric fieldline_samples_stored_total) samples stored"
  sleep 1
done
cat "$work/load.json"
