#!/usr/bin/env bash
# Two builds of fieldline side by side, loaded in turn with the same MQTT load: the way to
# tell a change's cost on a shared machine whose speed drifts within the hour. Prints rate and
# server CPU per message for each round (and, paced at RATE msg/s, PUBACK latency), then the
# medians.
#   bench/ab_builds.sh OLD_BINARY NEW_BINARY [qos, default 1] [rounds, default 3] [seconds, default 6] [rate, default 0: unpaced]
# e.g. git worktree add /tmp/old <commit> && (cd /tmp/old && tools/build.sh release --target fieldline)
#      bench/ab_builds.sh /tmp/old/build/release/fieldline build/release/fieldline 0
# OLD_ARGS / NEW_ARGS (environment) add serve arguments to one side, e.g. one binary against
# itself with a setting changed: OLD_ARGS="--set ingest.raw_log=off" bench/ab_builds.sh B B 1 3 12 150000
set -euo pipefail
cd "$(dirname "$0")/.."
old_bin=$1
new_bin=$2
qos="${3:-1}"
rounds="${4:-3}"
secs="${5:-6}"
rate="${6:-0}"
tools/build.sh release --target fieldline-loadgen >/dev/null
export FIELDLINE_ADMIN_TOKEN="${FIELDLINE_ADMIN_TOKEN:-bench-admin-token-0123456789}"
work=$(mktemp -d /tmp/fl-bench-ab.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
hz=$(getconf CLK_TCK)

start() {  # NAME BINARY [serve arguments...]: serves from $work/NAME, registers 100 devices into $work/NAME.creds
  local name=$1 bin=$2
  shift 2
  mkdir -p "$work/$name"
  "$bin" serve --data-dir "$work/$name/data" --mqtt-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-level warn \
    --set mqtt.receive_maximum=65535 "$@" > "$work/$name/log" 2>&1 &
  pids+=($!)
  echo $! > "$work/$name/pid"
  for _ in $(seq 100); do [[ -f "$work/$name/data/listen.json" ]] && break; sleep 0.1; done
  python3 - "$work/$name" <<'PY'
import http.client, json, os, sys
d = sys.argv[1]
ports = json.load(open(f"{d}/data/listen.json"))
open(f"{d}/mqtt_port", "w").write(str(ports["mqtt"]))
c = http.client.HTTPConnection("127.0.0.1", ports["http"])
h = {"Authorization": "Bearer " + os.environ["FIELDLINE_ADMIN_TOKEN"], "Content-Type": "application/json"}
with open(f"{d}.creds", "w") as f:
    for i in range(100):
        c.request("POST", "/api/v1/devices", json.dumps({"id": f"ab-{i}", "tags": {"site": f"s{i % 2}"}}), h)
        f.write(f"ab-{i} {json.loads(c.getresponse().read())['token']}\n")
PY
}
# shellcheck disable=SC2086 # the arguments are words to split
start old "$old_bin" ${OLD_ARGS:-}
# shellcheck disable=SC2086
start new "$new_bin" ${NEW_ARGS:-}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F); QoS $qos, 100 connections, ${secs}s per round, rate ${rate} (0: unpaced)"
echo
echo "| round | build | msg/s | server CPU µs/msg | PUBACK p50 / p99 ms |"
echo "|---|---|---|---|---|"
: > "$work/results"
for r in $(seq "$rounds"); do
  for name in old new; do
    pid=$(cat "$work/$name/pid")
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$(build/release/fieldline-loadgen --port "$(cat "$work/$name/mqtt_port")" --connections 100 --duration "$secs" --qos "$qos" \
          --rate "$rate" --credentials "$work/$name.creds")
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    python3 - "$r" "$name" "$out" "$before" "$after" "$hz" "$work/results" <<'PY'
import json, sys
r, name, out, before, after, hz, results = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
msgs = max(out["acked"] if out["qos"] == 1 else out["sent"], 1)
us = (after - before) / hz * 1e6 / msgs
lat = f'{out["latency_ms_p50"]:.1f} / {out["latency_ms_p99"]:.1f}' if out["qos"] == 1 else "-"
print(f'| {r} | {name} | {out["rate"]:,.0f} | {us:.2f} | {lat} |')
open(results, "a").write(f"{name} {out['rate']} {us} {out['latency_ms_p50']} {out['latency_ms_p99']}\n")
PY
  done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for name in ("old", "new"):
    mine = [[float(x) for x in r[1:]] for r in rows if r[0] == name]
    med = [statistics.median(m[i] for m in mine) for i in range(4)]
    print(f'| median | {name} | {med[0]:,.0f} | {med[1]:.2f} | {med[2]:.1f} / {med[3]:.1f} |')
PY
