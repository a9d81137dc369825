#!/usr/bin/env bash
# The README's first command from a fresh clone, timed: clones this checkout to a temporary
# folder, builds the binary there without ccache (as a new machine would) and runs the demo
# without serving; prints the time from the clone to the outcome and the outcome as JSON.
# (Debian packages are whatever this machine has: apt on a new machine adds its own time.)
#   bench/demo.sh [fieldline demo options...]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/fl-bench-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Beside the checkout's own ../shared, so the clone finds the datasets the way the checkout does.
ln -s "$(cd .. && pwd)/shared" "$work/shared" 2>/dev/null || true
start=$(date +%s.%N)
git clone -q . "$work/fieldline"
cd "$work/fieldline"
# The build's progress goes to stdout too; the demo's JSON is the last line.
CCACHE_DISABLE=1 tools/run.sh --no-serve --format json "$@" > "$work/run.out"
end=$(date +%s.%N)
tail -n 1 "$work/run.out" > "$work/outcome.json"
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
python3 - "$work/outcome.json" "$start" "$end" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
print(f"clone -> build (no ccache) -> demo outcome: {float(sys.argv[3]) - float(sys.argv[2]):.0f} s")
for arm in ("predictive", "run_to_failure", "preventive"):
    a = o[arm]
    print(f"{arm:15} failures {a['failures']:4}  unplanned downtime {a['unplanned_downtime_hours']:7.0f} h  "
          f"maintenance {a['maintenance_actions']:4}  cost {a['maintenance_cost']:10.0f}")
print(f"unplanned downtime vs run-to-failure {-100 * o['unplanned_downtime_reduction_vs_run_to_failure']:+.0f}%, "
      f"vs preventive {-100 * o['unplanned_downtime_reduction_vs_preventive']:+.0f}%; "
      f"orders to a pump failing within 7 days {100 * o['predictive'].get('alarm_precision', 0):.0f}%")
print(f"messages acknowledged {o['messages_acknowledged']}; bad messages {o['bad_messages']}")
k, b, h = o["platform_kpis"], o["platform_kpis_first_half"], o["hvac_kpis"]
print(f"platform KPIs, second half (first half): failures {k['failures']} ({b['failures']}), unplanned downtime "
      f"{k['unplanned_downtime_hours']:.0f} h ({b['unplanned_downtime_hours']:.0f} h), MTBF {k['mtbf_hours']:.0f} h ({b['mtbf_hours']:.0f} h), "
      f"availability {k['availability']:.3f} ({b['availability']:.3f}); HVAC kWh per kWh of cooling "
      f"{h['current']['energy_per_output']:.3f} ({h['baseline']['energy_per_output']:.3f})")
PY
