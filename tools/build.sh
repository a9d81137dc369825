#!/usr/bin/env bash
# Configures (once) and builds a CMake preset: release (default), debug (ASan+UBSan) or fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
# The operator console is compiled into the binary: build it first (the fuzz preset has no binary).
if [[ "$preset" != "fuzz" ]]; then
  tools/build_web.sh
fi
if [[ ! -f "build/$preset/build.ninja" ]]; then
  cmake --preset "$preset" >/dev/null
fi
jobs="${FIELDLINE_JOBS:-$(nproc)}"
# Beast/Asio translation units need ~1.3 GB each: don't run more jobs than memory allows.
mem_gb=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
if (( mem_gb > 0 && jobs > mem_gb )); then jobs=$mem_gb; fi
cmake --build --preset "$preset" -j "$jobs" "$@"
