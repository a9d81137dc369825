#!/usr/bin/env bash
# Issue 5's alarm latency: how long an anomalous sample published over MQTT takes to reach a
# WebSocket subscriber of /api/v1/stream as an alarm, while tools/loadgen keeps the server at
# RATE msg/s (QoS 1, 100 connections; default 75,000: half of the 150,000 msg/s issue 2 rates
# the platform for). Each of PROBES probe devices (a Python paho-mqtt client) first sends 300
# ordinary readings in one message, then one far-off reading; the clock starts just before
# that PUBLISH and stops when the alarm.raised event naming its value arrives (both ends in
# one Python process, on one clock). The load's own random values raise alarms too, so the
# storm limits are lifted here: this measures the path, not the rate limiter. Prints the
# percentiles, the load reached, and the machine.
#   bench/alarm_latency.sh [rate, default 75000] [probes, default 200]
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-75000}"
probes="${2:-200}"
tools/setup.sh --bench
tools/build.sh release --target fieldline fieldline-loadgen >/dev/null
source bench/fieldline.sh
bench_workdir alarm-latency
start_fieldline "$work" --set analytics.max_new_alarms_per_minute=1000000 --set analytics.notify_per_second=1000000 \
  --set mqtt.receive_maximum=65535
pids+=("$fl_pid")
register_devices 100 load "$work/load.creds"
register_devices "$probes" probe "$work/probe.creds"
# Enough load for the probes and their set-up.
duration=$((probes / 5 + 30))
build/release/fieldline-loadgen --port "$fl_mqtt" --connections 100 --duration "$duration" --qos 1 --rate "$rate" \
  --credentials "$work/load.creds" > "$work/loadgen.json" &
loadgen=$!
pids+=("$loadgen")
sleep 3
/usr/bin/python3 - "$fl_mqtt" "$fl_http" "$work/probe.creds" <<'PY' | tee "$work/probe.out"
import asyncio, datetime, json, os, random, statistics, sys, threading, time
import paho.mqtt.client as mqtt
import websockets

mqtt_port, http_port, creds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
devices = [line.split() for line in open(creds)]
sent = {}        # value -> perf_counter at PUBLISH
latencies = []

def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

async def listen(ready, done):
    url = f"ws://127.0.0.1:{http_port}/api/v1/stream?type=anomaly"
    async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + os.environ["FIELDLINE_ADMIN_TOKEN"]}) as ws:
        ready.set()
        while len(latencies) < len(devices):
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            except asyncio.TimeoutError:
                break
            if m.get("event") != "alarm.raised" or not m["alarm"]["device"].startswith("probe-"):
                continue
            value = m["alarm"]["evidence"]["samples"][-1][1]
            if value in sent:
                latencies.append((time.perf_counter() - sent.pop(value)) * 1000)
    done.set()

def probe(ready, done):
    ready.wait()
    random.seed(1)
    for i, (device, token) in enumerate(devices):
        c = mqtt.Client(client_id=device, protocol=mqtt.MQTTv311)
        c.username_pw_set(device, token)
        c.connect("127.0.0.1", mqtt_port)
        c.loop_start()
        now = time.time()
        history = [{"ts": rfc3339(now - 301 + k), "values": {"temperature": 60 + random.gauss(0, 1)}} for k in range(300)]
        c.publish(f"devices/{device}/telemetry", json.dumps(history), qos=1).wait_for_publish()
        time.sleep(0.05)
        value = 1000.0 + i
        payload = json.dumps({"ts": rfc3339(time.time()), "values": {"temperature": value}})
        sent[value] = time.perf_counter()
        c.publish(f"devices/{device}/telemetry", payload, qos=1).wait_for_publish()
        time.sleep(0.05)
        c.loop_stop()
        c.disconnect()
    time.sleep(2)

ready, done = threading.Event(), threading.Event()
t = threading.Thread(target=probe, args=(ready, done))
t.start()
asyncio.run(listen(ready, done))
t.join()
latencies.sort()
q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
print(json.dumps({"probes": len(devices), "alarms": len(latencies), "p50_ms": round(q(0.50), 2), "p90_ms": round(q(0.90), 2),
                  "p99_ms": round(q(0.99), 2), "max_ms": round(latencies[-1], 2)}))
PY
wait "$loadgen" || true
python3 - "$work/loadgen.json" "$rate" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
print(json.dumps({"load_target_msg_s": int(sys.argv[2]), "load_reached_msg_s": round(out["rate"]), "puback_p99_ms": out["latency_ms_p99"]}))
PY
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
