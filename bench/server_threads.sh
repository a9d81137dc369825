#!/usr/bin/env bash
# Where one fieldline server's CPU goes, thread by thread, under a paced QoS 1 load (100
# connections): user and system CPU per message and voluntary context switches per second for
# each thread (from /proc/PID/task/*/stat and status, before and after), and the WAL's fsyncs
# per second per shard (fieldline_wal_fsyncs). Threads are unnamed: the shards are the two
# busiest, the WAL flushers the ones with almost only system time and a wake-up per fsync or
# so. FIELDLINE_BIN / FIELDLINE_ENV (bench/fieldline.sh) pick the build and its environment.
#   bench/server_threads.sh [rate, default 150000] [seconds, default 8] [serve arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-150000}"
secs="${2:-8}"
shift $(( $# < 2 ? $# : 2 ))
tools/setup.sh
tools/build.sh release --target fieldline-loadgen >/dev/null
source bench/fieldline.sh
bench_server threads "$@"
snapshot() {  # FILE: "tid utime stime voluntary_switches" per thread, then "wal SHARD FSYNCS" lines
  for t in /proc/"$fl_pid"/task/*; do
    echo "$(basename "$t") $(awk '{print $14, $15}' "$t/stat") $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"
  done > "$1"
  curl -s -H "Authorization: Bearer $FIELDLINE_ADMIN_TOKEN" "http://127.0.0.1:$fl_http/metrics" |
    sed -n 's/^fieldline_wal_fsyncs{shard="\([0-9]*\)"} \([0-9]*\)$/wal \1 \2/p' >> "$1"
}
snapshot "$work/before"
start=$(date +%s.%N)
build/release/fieldline-loadgen --port "$fl_mqtt" --connections 100 --qos 1 --duration "$secs" --rate "$rate" \
  --credentials "$work/creds" > "$work/load.json"
snapshot "$work/after"
end=$(date +%s.%N)
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F); ${FIELDLINE_BIN:-build/release/fieldline} ${FIELDLINE_ENV:-} $*"
echo
python3 - "$work/before" "$work/after" "$work/load.json" "$(getconf CLK_TCK)" "$start" "$end" <<'PY'
import json, sys
def read(path):
    threads, wal = {}, {}
    for line in open(path):
        f = line.split()
        if f[0] == "wal": wal[f[1]] = int(f[2])
        else: threads[f[0]] = tuple(map(int, f[1:4]))
    return threads, wal
(t0, w0), (t1, w1) = read(sys.argv[1]), read(sys.argv[2])
load, hz = json.load(open(sys.argv[3])), int(sys.argv[4])
seconds = float(sys.argv[6]) - float(sys.argv[5])
n = max(load["acked"], 1)
print(f"{load['rate']:,.0f} msg/s, PUBACK p99 {load['latency_ms_p99']} ms")
print()
print("| thread | user µs/msg | system µs/msg | voluntary switches/s |")
print("|---|---|---|---|")
rows = []
for tid, (u1, s1, v1) in t1.items():
    u0, s0, v0 = t0.get(tid, (0, 0, 0))
    rows.append(((u1 - u0 + s1 - s0), tid, (u1 - u0) / hz * 1e6 / n, (s1 - s0) / hz * 1e6 / n, (v1 - v0) / seconds))
total_u = total_s = 0
for _, tid, u, s, v in sorted(rows, reverse=True):
    total_u, total_s = total_u + u, total_s + s
    if u + s >= 0.01: print(f"| {tid} | {u:.2f} | {s:.2f} | {v:,.0f} |")
print(f"| all | {total_u:.2f} | {total_s:.2f} | |")
print()
for shard in sorted(w1):
    print(f"WAL shard {shard}: {(w1[shard] - w0.get(shard, 0)) / seconds:,.0f} fsyncs/s")
PY
