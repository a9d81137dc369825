#!/usr/bin/env bash
# Sets everything up and runs every test: unit, integration (the real binary with mosquitto
# clients and curl) under the release build; all of them again under ASan+UBSan; and a replay
# of every fuzz corpus plus a short fuzzing run per target (clang libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"

echo "== release build"
tools/build.sh release
echo "== unit and integration tests (release)"
ctest --preset release -j "$(nproc)" --timeout 900

echo "== unit and integration tests under AddressSanitizer and UndefinedBehaviorSanitizer (debug)"
# The integration tests start the sanitized binary too, so the server's sessions, shards and
# background jobs run under the sanitizers (the options reach it through the environment).
tools/build.sh debug --target core_test tsdb_test transport_test ingest_test analytics_test alarms_test ml_test sim_test fieldline platform_integration_test
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build/debug -j "$(nproc)" --timeout 900 --output-on-failure

echo "== fuzz targets: corpus replay and ${FIELDLINE_FUZZ_SECONDS:-15} s of fuzzing each"
tools/fuzz.sh "${FIELDLINE_FUZZ_SECONDS:-15}"
echo "== all tests passed"
