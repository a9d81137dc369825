#!/usr/bin/env bash
# Side-by-side MQTT ingest: fieldline (storing every message, PUBACK after the WAL fsync
# policy) and mosquitto 2.0 (persistence off, acknowledging before anything is on disk), same
# load from tools/loadgen in the same run; at QoS 0 mosquitto also with one subscriber, its
# forwarding rate (what the subscriber receives per second). Prints a markdown table with rates, PUBACK latency
# and server CPU microseconds per message (from /proc/<pid>/stat).
#   bench/mqtt_vs_mosquitto.sh [seconds per scenario, default 10] [connections, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-100}"
tools/setup.sh
tools/build.sh release >/dev/null
source bench/fieldline.sh
bench_workdir mqtt
chmod 755 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mq_port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 100000\n' "$mq_port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" & pids+=($!)

start_fieldline "$work" --set mqtt.receive_maximum=65535
pids+=("$fl_pid")
mq_pid=${pids[0]}
register_devices "$conns" bench "$work/creds"

hz=$(getconf CLK_TCK)
run() {  # name server_pid port extra-args...
  local name=$1 pid=$2 port=$3; shift 3
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(build/release/fieldline-loadgen --port "$port" --connections "$conns" --duration "$secs" "$@")
  after=$(cpu_ticks "$pid")
  python3 - "$name" "$out" "$before" "$after" "$hz" <<'PY'
import json, sys
name, out, before, after, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu_us = (after - before) / hz * 1e6
msgs = max(out["acked"] if out["qos"] == 1 else out["sent"], 1)
lat = f'{out["latency_ms_p50"]:.2f} / {out["latency_ms_p99"]:.2f}' if out["qos"] == 1 else "-"
rate = out["rate"]
if "forwarded_rate" in out:
    # A broker's forwarding rate: what its subscriber received, per second, and its CPU per
    # forwarded message.
    name += f' → 1 subscriber (got {out["forwarded_share"]:.1%} of {out["sent"]:,})'
    rate, msgs = out["forwarded_rate"], max(out["forwarded"], 1)
print(f'| {name} | {out["qos"]} | {out["target_rate"] or "max":} | {rate:,.0f} | {lat} | {cpu_us / msgs:.2f} | {out["loadgen_cpu_us_per_msg"]:.2f} | {out["failed_connections"]} |')
PY
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F); ${secs}s per row, $conns connections"
echo
echo "| server | QoS | target msg/s | msg/s | PUBACK p50 / p99 ms | server CPU µs/msg | loadgen CPU µs/msg | failed conns |"
echo "|---|---|---|---|---|---|---|---|"
run "mosquitto 2.0 (no persistence)" "$mq_pid" "$mq_port" --qos 0 --topic 'devices/{id}/telemetry'
# Forwarding, which is what a broker is for: one subscriber on every device's telemetry (the
# loadgen's own, on a thread of its own; mosquitto_sub would measure itself).
run "mosquitto 2.0 (no persistence)" "$mq_pid" "$mq_port" --qos 0 --topic 'devices/{id}/telemetry' --subscribe 'devices/+/telemetry'
run "fieldline (stores every message)" "$fl_pid" "$fl_mqtt" --qos 0 --credentials "$work/creds"
run "mosquitto 2.0 (no persistence)" "$mq_pid" "$mq_port" --qos 1 --topic 'devices/{id}/telemetry'
run "fieldline (10 ms group commit)" "$fl_pid" "$fl_mqtt" --qos 1 --credentials "$work/creds"
run "mosquitto 2.0 (no persistence)" "$mq_pid" "$mq_port" --qos 1 --rate 150000 --topic 'devices/{id}/telemetry'
run "fieldline (10 ms group commit)" "$fl_pid" "$fl_mqtt" --qos 1 --rate 150000 --credentials "$work/creds"
run "mosquitto 2.0 (no persistence)" "$mq_pid" "$mq_port" --qos 1 --rate 20000 --topic 'devices/{id}/telemetry'
run "fieldline (10 ms group commit)" "$fl_pid" "$fl_mqtt" --qos 1 --rate 20000 --credentials "$work/creds"
stored=$(curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$fl_http/metrics" | awk '/^fieldline_samples_stored_total/ {print $2}')
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$fl_pid/status")
echo
echo "fieldline stored $stored samples (5 per message); RSS ${rss_kb} KiB at the end."
