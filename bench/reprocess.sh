#!/usr/bin/env bash
# What reprocessing costs (issue 4): one device's MESSAGES messages of 5 values, one a second
# (so the older hours are cut into blocks), stored over MQTT QoS 1 with mosquitto_pub; the
# contract is changed (a unit fix) and `fieldline reprocess` derives the whole range again.
# Prints the time to ingest the messages live and the time to reprocess them (messages/s,
# and the ratio: reprocessing a message against ingesting it through one MQTT connection).
#   bench/reprocess.sh [messages, default 50000]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-50000}"
tools/setup.sh
tools/build.sh release >/dev/null
source bench/fieldline.sh
bench_workdir reprocess

start_fieldline "$work" --set mqtt.receive_maximum=65535
pids+=("$fl_pid")
contract() {
  cat > "$work/c.toml" <<EOF
profile = "pump"
[metrics.temp]
type = "float"
unit = "$1"
[metrics.pressure]
type = "float"
unit = "bar"
[metrics.vibration]
type = "float"
unit = "mm/s"
[metrics.rpm]
type = "int"
unit = "{rev}/min"
[metrics.current]
type = "float"
unit = "A"
EOF
  build/release/fieldline contract apply "$work/c.toml" --server "http://127.0.0.1:$fl_http" --token "$FIELDLINE_ADMIN_TOKEN" $2 >/dev/null
}
contract Cel ""
token=$(curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" -d '{"id": "p1", "profile": "pump"}' \
  "http://127.0.0.1:$fl_http/api/v1/devices" | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
start_ms=$(( ($(date +%s) - n - 3600) * 1000 ))
python3 - "$n" "$start_ms" > "$work/feed.txt" <<'PY'
import random, sys
n, t0 = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(7)
for i in range(n):
    print('{"ts": %d, "values": {"temp": %.2f, "pressure": %.3f, "vibration": %.2f, "rpm": %d, "current": %.2f}}'
          % (t0 + i * 1000, 60 + r.random() * 5, 4 + r.random(), r.random() * 3, 1450 + r.randrange(20), 10 + r.random()))
PY
t_ingest=$( { /usr/bin/time -f %e mosquitto_pub -h 127.0.0.1 -p "$fl_mqtt" -u p1 -P "$token" -i p1 -q 1 \
  -t devices/p1/telemetry -l < "$work/feed.txt" ; } 2>&1 )
sleep 3  # block cuts of the older hours
blocks=$(curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$fl_http/metrics" | awk '/^fieldline_tsdb_blocks/ {s += $2} END {print s + 0}')
# The fix: temp was sent in degrees Fahrenheit all along (a breaking change, forced).
contract "[degF]" "--force --reason bench"
from=$start_ms
to=$(( start_ms + n * 1000 ))
out=$( { /usr/bin/time -f %e build/release/fieldline reprocess --device p1 --from "$from" --to "$to" --format json \
  --server "http://127.0.0.1:$fl_http" --token "$FIELDLINE_ADMIN_TOKEN" ; } 2>&1 )
python3 - "$n" "$t_ingest" "$blocks" "$out" <<'PY'
import json, sys
n, t_ingest, blocks = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
lines = sys.argv[4].strip().splitlines()
t_job, report = float(lines[-1]), json.loads("\n".join(lines[:-1]))
assert report["applied"], report
assert report["messages"] == n and report["samples_after"] == 5 * n, report
print(f"| messages | blocks before | ingest (1 MQTT conn) | reprocess | reprocess msg/s | reprocess / ingest time |")
print(f"|---|---|---|---|---|---|")
print(f"| {n:,} | {blocks} | {t_ingest:.2f} s ({n / t_ingest:,.0f} msg/s) | {t_job:.2f} s | {n / t_job:,.0f} | {t_job / t_ingest:.2f} |")
print(f"\nreport: {report['samples_before']:,} samples out, {report['samples_after']:,} in, {report['blocks_rewritten']} blocks rewritten, server-side {report['duration_ms'] / 1000:.2f} s")
PY
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
