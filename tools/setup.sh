#!/usr/bin/env bash
# Installs every Debian package Fieldline needs to build, test and benchmark.
# Idempotent: when everything is present it prints nothing and exits 0.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  clang libclang-rt-14-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev libzstd-dev libxgboost-dev xgboost libjemalloc-dev
  mosquitto mosquitto-clients curl procps python3 python3-websockets openssl sqlite3
)
# The browser the console's tests and benchmark drive (tools/test.sh passes --test, the
# benchmarks --bench): not needed to run the platform, and large.
browser_packages=(chromium chromium-driver)
# Peers used only by the benchmarks; installed when asked (bench/run passes --bench).
bench_packages=(influxdb linux-perf python3-paho-mqtt)

want=("${packages[@]}")
# Node.js builds the operator console (web/, Vite) and drives the browser tests
# (playwright-core); it runs Node-RED for the benchmarks. A Node.js from elsewhere that brings
# its own npm is used as it is (Debian's npm package would conflict with it).
command -v node >/dev/null || want+=(nodejs)
command -v npm >/dev/null || want+=(npm)
if [[ "${1:-}" == "--test" ]]; then
  want+=("${browser_packages[@]}")
fi
if [[ "${1:-}" == "--bench" ]]; then
  want+=("${bench_packages[@]}" "${browser_packages[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
