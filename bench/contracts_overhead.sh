#!/usr/bin/env bash
# What trustworthy data costs at ingestion (issue 4): the same MQTT QoS 1 load
# (tools/loadgen, ~100-byte JSON messages of 5 values) against two servers run side by side
# and loaded in turn (A/B rounds):
#   off: devices whose profile has no contract and no calibration; raw log off (no lineage)
#   on:  devices with a contract (type, unit, range, rate checks), a calibration of one
#        metric each, and the raw log (every message's payload and lineage kept)
# Series tags (protocol, profile) and the data-quality counters run in both. Prints each round
# and the ratio of the medians (target: on >= 80% of off).
#   bench/contracts_overhead.sh [seconds per round, default 8] [connections, default 50] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
conns="${2:-50}"
rounds="${3:-3}"
tools/setup.sh
tools/build.sh release >/dev/null
source bench/fieldline.sh
bench_workdir contracts

mkdir -p "$work/off" "$work/on"
start_fieldline "$work/off" --set mqtt.receive_maximum=65535 --set ingest.raw_log=off
pids+=("$fl_pid")
off_mqtt=$fl_mqtt
off_http=$fl_http
start_fieldline "$work/on" --set mqtt.receive_maximum=65535
pids+=("$fl_pid")
on_mqtt=$fl_mqtt
on_http=$fl_http
cat > "$work/bench.toml" <<'EOF'
profile = "contracted"
required_tags = ["site"]
[metrics.temp]
type = "float"
unit = "Cel"
min = -40
max = 150
required = true
max_rate_hz = 100000
[metrics.pressure]
type = "float"
unit = "bar"
min = 0
max = 40
[metrics.vibration]
type = "float"
unit = "mm/s"
min = 0
max = 50
[metrics.rpm]
type = "int"
unit = "{rev}/min"
[metrics.current]
type = "float"
unit = "A"
EOF
build/release/fieldline contract apply "$work/bench.toml" --server "http://127.0.0.1:$on_http" --token "$FIELDLINE_ADMIN_TOKEN" >/dev/null
python3 - "$off_http" "$on_http" "$conns" "$work" <<'PY'
import http.client, json, sys, os
off_port, on_port, n, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
h = {"Authorization": "Bearer " + os.environ["FIELDLINE_ADMIN_TOKEN"], "Content-Type": "application/json"}
for profile, port in (("contracted", on_port), ("plain", off_port)):
    c = http.client.HTTPConnection("127.0.0.1", port)
    with open(f"{work}/{profile}.creds", "w") as f:
        for i in range(n):
            body = {"id": f"{profile}-{i}", "profile": profile, "tags": {"site": f"s{i % 2}"}}
            c.request("POST", "/api/v1/devices", json.dumps(body), h)
            r = json.loads(c.getresponse().read())
            f.write(f"{profile}-{i} {r['token']}\n")
            if profile == "contracted":
                # A calibration per device: applied to every temp sample.
                cal = {"metric": "temp", "gain": 1.002, "offset": -0.05, "valid_from": "2020-01-01T00:00:00Z"}
                c.request("POST", f"/api/v1/devices/{profile}-{i}/calibrations", json.dumps(cal), h)
                resp = c.getresponse()
                assert resp.status == 201, resp.read()
                resp.read()
PY

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F); ${secs}s per round, $conns connections, QoS 1"
echo
echo "| round | off msg/s | on msg/s | on / off |"
echo "|---|---|---|---|"
results="$work/results"
: > "$results"
for r in $(seq "$rounds"); do
  off=$(build/release/fieldline-loadgen --port "$off_mqtt" --connections "$conns" --duration "$secs" --qos 1 --credentials "$work/plain.creds")
  on=$(build/release/fieldline-loadgen --port "$on_mqtt" --connections "$conns" --duration "$secs" --qos 1 --credentials "$work/contracted.creds")
  python3 - "$r" "$off" "$on" "$results" <<'PY'
import json, sys
r, a, b, out = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
assert a["refused"] == 0 and b["refused"] == 0, "the server refused messages: " + sys.argv[2] + sys.argv[3]
print(f'| {r} | {a["rate"]:,.0f} | {b["rate"]:,.0f} | {b["rate"] / a["rate"]:.2f} |')
open(out, "a").write(f'{a["rate"]} {b["rate"]}\n')
PY
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
a, b = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
print(f'| median | {a:,.0f} | {b:,.0f} | **{b / a:.2f}** |')
PY
metrics=$(curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$on_http/metrics")
flagged=$(awk '/^fieldline_samples_flagged_total/ {s += $2} END {print s + 0}' <<< "$metrics")
quarantined=$(awk '/^fieldline_messages_quarantined_total/ {s += $2} END {print s + 0}' <<< "$metrics")
raw_bytes=$(du -sb "$work/on/data/raw" | cut -f1)
echo
echo "On: $flagged samples flagged and $quarantined messages quarantined (0 expected: the load conforms); raw log $raw_bytes bytes on disk."
