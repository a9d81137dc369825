#!/usr/bin/env bash
# 10,000 device connections at 10 messages/s each (QoS 1), fieldline and then mosquitto 2.0
# (persistence off, acknowledging on receipt: the peer) with the same load in the same run:
# resident memory per idle connection, then PUBACK latency percentiles (fieldline's PUBACK =
# durable), the rate reached and each server's CPU per message.
#   bench/mqtt_many_connections.sh [connections, default 10000] [msg/s per connection, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-10000}"
per="${2:-10}"
tools/setup.sh
tools/build.sh release >/dev/null
source bench/fieldline.sh
bench_workdir conns
chmod 755 "$work"
ulimit -n "$(ulimit -Hn)"

# measure NAME PID PORT [loadgen arguments...]: idle RSS per connection, then the paced load.
measure() {
  local name=$1 pid=$2 port=$3; shift 3
  rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
  established() { ss -Htn state established "( sport = :$port )" | wc -l; }
  local before during open
  before=$(rss)
  echo "$(date +%T) $name: connecting $conns idle clients" >&2
  # Idle: connect everything, send almost nothing, measure RSS while all are connected.
  build/release/fieldline-loadgen --port "$port" --connections "$conns" --qos 1 --rate 1 --duration 20 \
    --threads 2 "$@" > "$work/idle.json" &
  local lg=$!
  for _ in $(seq 150); do
    open=$(established)
    [[ "$open" -ge "$conns" ]] && break
    sleep 0.1
  done
  sleep 1
  during=$(rss)
  wait "$lg" || true
  echo "$name, idle: $open of $conns connections open, RSS before ${before} KiB, while connected ${during} KiB, $(( (during - before) * 1024 / conns )) bytes per connection"
  echo "$(date +%T) $name: $conns connections at $per msg/s each" >&2
  local cpu_before
  cpu_before=$(cpu_ticks "$pid")
  # The first 5 s (10,000 devices connecting, fieldline's first sight of 50,000 series) are
  # left out of the latency percentiles, not out of the rate or the CPU.
  build/release/fieldline-loadgen --port "$port" --connections "$conns" --qos 1 --rate $((conns * per)) --duration 20 \
    --warmup 5 --threads 2 "$@" > "$work/load.json"
  python3 - "$name" "$work/load.json" "$cpu_before" "$(cpu_ticks "$pid")" "$(getconf CLK_TCK)" <<'PY'
import json, sys
name, r = sys.argv[1], json.load(open(sys.argv[2]))
cpu_s = (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])
print(f"{name}, load: {r['acked']:,} of {r['sent']:,} sent acknowledged, {r['rate']:,.0f} msg/s over {r['elapsed_s']:.1f} s "
      f"(target {r['target_rate']:,}); p50 / p99 PUBACK after the warm-up {r['latency_ms_p50']:.1f} / {r['latency_ms_p99']:.1f} ms; "
      f"server CPU {cpu_s * 1e6 / max(r['acked'], 1):.1f} us per message (connection setup included), "
      f"loadgen {r['loadgen_cpu_us_per_msg']:.1f} us; failed connections {r['failed_connections']}")
PY
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
start_fieldline "$work"
pids+=("$fl_pid")
echo "$(date +%T) registering $conns devices" >&2
register_devices "$conns" fleet "$work/creds"
measure "fieldline (storing every message)" "$fl_pid" "$fl_mqtt" --credentials "$work/creds"
kill "$fl_pid"
wait "$fl_pid" || true

mq_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 100000\n' "$mq_port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" &
mq_pid=$!
pids+=("$mq_pid")
sleep 0.5
measure "mosquitto 2.0 (no persistence)" "$mq_pid" "$mq_port" --topic 'devices/{id}/telemetry'
