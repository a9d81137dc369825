#!/usr/bin/env bash
# Side-by-side storage: Fieldline's engine and InfluxDB 1.6 (Debian package, started on
# loopback here and stopped after) on the same data: NAB machine temperature, the SKAB
# valve1 files and a synthetic fleet of 10,000 1 Hz sensors. Reports write rate (same batch
# size, 5,000 lines) and bytes per sample on disk after both engines persisted the data.
# Fieldline is measured through its library API (bench/tsdb_load) because that is the engine;
# InfluxDB through its HTTP /write endpoint, the only way in. Ratios are in the last column.
#   bench/tsdb_vs_influxdb.sh [synthetic series, default 10000] [points each, default 360]
set -euo pipefail
cd "$(dirname "$0")/.."
series="${1:-10000}"
points="${2:-360}"
tools/setup.sh --bench
tools/build.sh release >/dev/null
data=../shared/datasets
work=$(mktemp -d /tmp/fl-bench-tsdb.XXXXXX)
chmod 777 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); rpc=$(free_port)
cat > "$work/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  cache-snapshot-write-cold-duration = "1s"
  compact-full-write-cold-duration = "2s"
[http]
  bind-address = "127.0.0.1:$http"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
influxd -config "$work/influxdb.conf" > "$work/influxd.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -s "http://127.0.0.1:$http/ping" >/dev/null && break; sleep 0.2; done

influx_load() {  # db file -> "seconds bytes"
  local db=$1 file=$2
  curl -s -XPOST "http://127.0.0.1:$http/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
  split -l 5000 "$file" "$work/chunk-$db-"
  local start end
  start=$(date +%s.%N)
  for f in "$work"/chunk-"$db"-*; do
    curl -s -f -XPOST "http://127.0.0.1:$http/write?db=$db&precision=ns" --data-binary @"$f" >/dev/null
  done
  end=$(date +%s.%N)
  rm -f "$work"/chunk-"$db"-*
  sleep 12  # let InfluxDB snapshot its cache to TSM files and compact them
  local bytes
  # TSM files only: the shard's index files are a fixed cost that would swamp small datasets.
  bytes=$(find "$work/influx/data/$db" -name '*.tsm' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  echo "$(python3 -c "print($end - $start)") $bytes"
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
echo
echo "| data | samples | fieldline samples/s | InfluxDB samples/s | write ratio | fieldline bytes/sample | InfluxDB bytes/sample |"
echo "|---|---|---|---|---|---|---|"
i=0
compare() {  # name loader-args...
  local name=$1; shift
  i=$((i + 1))
  local out
  out=$(build/release/tsdb_load --dir "$work/fl$i" --lp-out "$work/lp$i" "$@")
  read -r secs bytes < <(influx_load "d$i" "$work/lp$i")
  python3 - "$name" "$out" "$secs" "$bytes" <<'PY'
import json, sys
name, fl, secs, ibytes = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
n = fl["samples"]
irate = n / secs
print(f'| {name} | {n:,} | {fl["samples_per_second"]:,.0f} | {irate:,.0f} | {fl["samples_per_second"] / irate:.1f}x | {fl["bytes_per_sample"]:.2f} | {ibytes / n:.2f} |')
PY
}
compare "NAB machine_temperature_system_failure" --input "$data/nab/data/realKnownCause/machine_temperature_system_failure.csv" --format nab
for f in "$data"/skab/data/valve1/*.csv; do cat "$f"; done | awk 'NR==1 || !/^datetime/' > "$work/skab_valve1.csv"
compare "SKAB valve1 (8 metrics)" --input "$work/skab_valve1.csv" --format skab
compare "synthetic $series sensors x $points s" --synthetic "$series" --points "$points"
