#!/usr/bin/env bash
# Where fieldline's memory goes under load: N device connections (default 10,000) sending at QoS
# Q (default 0) for 8 s, as fast as they can or at RATE messages/s in all. Resident memory is
# sampled every 0.25 s; once a second it prints it (anonymous and file-backed), the open
# connections and the samples stored, and at the end the load generator's report and the peak.
#   bench/memory_under_flood.sh [connections] [qos] [rate, 0: as fast as possible] [serve --set options...]
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-10000}"
qos="${2:-0}"
rate="${3:-0}"
tools/setup.sh
tools/build.sh release --target fieldline fieldline-loadgen >/dev/null
source bench/fieldline.sh
bench_workdir flood
start_fieldline "$work" "${@:4}"
pids+=("$fl_pid")
register_devices "$conns" f "$work/creds"
metric() { curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$fl_http/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$fl_pid/status"; }
echo "registered $conns devices: RSS $(status VmRSS) KiB"
rate_args=()
[[ "$rate" != 0 ]] && rate_args=(--rate "$rate")
build/release/fieldline-loadgen --port "$fl_mqtt" --connections "$conns" --qos "$qos" --duration 8 --threads 2 "${rate_args[@]}" \
  --credentials "$work/creds" > "$work/load.json" &
lg=$!
peak=0
tick=0
while kill -0 "$lg" 2>/dev/null; do
  rss=$(status VmRSS)
  (( rss > peak )) && peak=$rss
  if (( tick++ % 4 == 0 )); then
    echo "$(date +%T) RSS $rss KiB (anonymous $(status RssAnon), files $(status RssFile)), $(metric fieldline_mqtt_connections) connections, $(metric fieldline_samples_stored_total) samples stored"
  fi
  sleep 0.25
done
cat "$work/load.json"
echo "peak RSS $((peak / 1024)) MiB (sampled every 0.25 s)"
