#!/usr/bin/env bash
# Sets everything up and starts Fieldline on its embedded default: one process, everything
# under ./data (SQLite registry + Fieldline's own time-series engine), nothing else to run.
# The admin token is printed on the first start (or set FIELDLINE_ADMIN_TOKEN beforehand).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh release
exec build/release/fieldline serve --data-dir "${FIELDLINE_DATA_DIR:-./data}" "$@"
