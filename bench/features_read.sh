#!/usr/bin/env bash
# Issue 6's read target: GET /api/v1/devices/{id}/features, p99 ≤ 1 ms. A pump's view has
# 10 min, 1 h and 24 h windows with mean, std, min, max, slope, count, p50 and p90 (the
# percentiles are what cost); the pump sends a day of 1 Hz readings (86,400, over HTTP in
# batches), then READS GETs go over one keep-alive connection from Python (its own time is in
# the figures: they are an upper bound). Prints the percentiles of the round trip.
#   bench/features_read.sh [reads, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
reads="${1:-2000}"
tools/setup.sh --bench
tools/build.sh release --target fieldline >/dev/null
source bench/fieldline.sh
bench_workdir features-read
start_fieldline "$work"
pids+=("$fl_pid")
python3 - "$fl_http" "$reads" <<'PY'
import http.client, json, os, statistics, sys, time
port, reads = int(sys.argv[1]), int(sys.argv[2])
admin = {"Authorization": "Bearer " + os.environ["FIELDLINE_ADMIN_TOKEN"]}
c = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None, headers=admin, ctype="application/json"):
    c.request(method, path, body, {**headers, "Content-Type": ctype})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:200]}")
    return data
view = ('view = "pump_health"\nprofile = "pump"\n[[metrics]]\nmetric = "vibration"\nwindows = ["10m", "1h", "24h"]\n'
        'aggregates = ["mean", "std", "min", "max", "slope", "count", "p50", "p90"]\nlast = true\newma = "10m"\n')
call("POST", "/api/v1/features/views", view, ctype="text/plain")
token = json.loads(call("POST", "/api/v1/devices", json.dumps({"id": "pump-1", "profile": "pump"})))["token"]
device = {"Authorization": "Bearer " + token}
start = int(time.time() * 1000) - 86_400_000
for batch in range(0, 86_400, 2000):
    body = [{"ts": start + 1000 * i, "values": {"vibration": 50 + (i * 7919 % 1000) / 100}} for i in range(batch, min(batch + 2000, 86_400))]
    call("POST", "/api/v1/devices/pump-1/telemetry", json.dumps(body), device)
features = json.loads(call("GET", "/api/v1/devices/pump-1/features"))["features"]
assert features["vibration_count_24h"] == 86_400, features["vibration_count_24h"]
latencies = []
for _ in range(reads):
    t = time.perf_counter()
    call("GET", "/api/v1/devices/pump-1/features")
    latencies.append((time.perf_counter() - t) * 1000)
latencies.sort()
q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
print(f"GET features, 24 h window of 86,400 samples with p50 and p90 ({reads} reads): "
      f"p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms, max {latencies[-1]:.3f} ms")
PY
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
