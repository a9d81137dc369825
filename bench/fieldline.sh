# Sourced by the bench scripts: a fieldline server on loopback, its devices, CPU readings.
export FIELDLINE_ADMIN_TOKEN="${FIELDLINE_ADMIN_TOKEN:-bench-admin-token-0123456789}"

# bench_workdir NAME: a fresh $work under /tmp, removed on exit with every server whose pid the
# script adds to $pids.
bench_workdir() {
  work=$(mktemp -d "/tmp/fl-bench-$1.XXXXXX")
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# start_fieldline WORKDIR [serve arguments...]: serves from WORKDIR/data on free loopback
# ports, logs to WORKDIR/fieldline.log; sets fl_pid, fl_mqtt and fl_http. FIELDLINE_BIN picks
# another binary (an older build, to compare); FIELDLINE_ENV sets environment variables for the
# server alone (e.g. "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2" or
# "MALLOC_CONF=thp:always").
start_fieldline() {
  local work=$1; shift
  # shellcheck disable=SC2086 # FIELDLINE_ENV is words to split
  env ${FIELDLINE_ENV:-} "${FIELDLINE_BIN:-build/release/fieldline}" serve --data-dir "$work/data" --mqtt-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --log-level warn "$@" > "$work/fieldline.log" 2>&1 &
  fl_pid=$!
  for _ in $(seq 100); do [[ -f "$work/data/listen.json" ]] && break; sleep 0.1; done
  fl_mqtt=$(python3 -c "import json;print(json.load(open('$work/data/listen.json'))['mqtt'])")
  fl_http=$(python3 -c "import json;print(json.load(open('$work/data/listen.json'))['http'])")
}

# register_devices COUNT PREFIX FILE: registers PREFIX-0.. over one keep-alive connection and
# writes "id token" lines to FILE (tools/loadgen's --credentials).
register_devices() {
  python3 - "$fl_http" "$1" "$2" "$3" <<'PY'
import http.client, json, sys, os
port, n, prefix, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"Authorization": "Bearer " + os.environ["FIELDLINE_ADMIN_TOKEN"], "Content-Type": "application/json"}
with open(out, "w") as f:
    for i in range(n):
        c.request("POST", "/api/v1/devices", json.dumps({"id": f"{prefix}-{i}", "tags": {"site": f"s{i % 2}"}}), h)
        f.write(f"{prefix}-{i} {json.loads(c.getresponse().read())['token']}\n")
PY
}

# cpu_ticks PID: user + system CPU time of a process, in clock ticks (getconf CLK_TCK).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench_server NAME [serve arguments...]: bench_workdir NAME, then a server (start_fieldline,
# room for 65,535 messages in flight per connection) with 100 devices registered into
# $work/creds for tools/loadgen.
bench_server() {
  local name=$1; shift
  bench_workdir "$name"
  start_fieldline "$work" --set mqtt.receive_maximum=65535 "$@"
  pids+=("$fl_pid")
  register_devices 100 bench "$work/creds"
}
