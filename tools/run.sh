#!/usr/bin/env bash
# Sets everything up (Debian packages, the build) and starts Fieldline on its embedded default:
# one process, everything under one data directory (SQLite registry + Fieldline's own
# time-series engine), nothing else to run.
#
#   tools/run.sh                 fieldline demo: a simulated fleet of pumps, HVAC units and energy
#                                meters through the whole platform (./fieldline-demo), predictive
#                                maintenance against two baselines, then the platform keeps
#                                running with live data; options after it go to `fieldline demo`
#   tools/run.sh serve [...]     the platform alone on ./data (FIELDLINE_DATA_DIR), for your own
#                                devices; the admin token is printed on the first start (or set
#                                FIELDLINE_ADMIN_TOKEN beforehand)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# Only the binary: the tests and benchmarks are tools/test.sh's to build.
tools/build.sh release --target fieldline
if [[ "${1:-}" == "serve" ]]; then
  shift
  exec build/release/fieldline serve --data-dir "${FIELDLINE_DATA_DIR:-./data}" "$@"
fi
exec build/release/fieldline demo "$@"
