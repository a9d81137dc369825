#!/usr/bin/env bash
# Predictive maintenance (issue 6): remaining useful life on NASA C-MAPSS through the feature
# store and XGBoost (fieldline eval cmapss: RMSE, PHM08 score, training time on this machine)
# and the online features' cost (ml_bench). Prints one table.
#   bench/ml.sh [datasets folder, default ../shared/datasets] [subset, default FD001]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/datasets}"
subset="${2:-FD001}"
tools/setup.sh
tools/build.sh release >/dev/null
rul=$(build/release/fieldline eval cmapss --data "$data/cmapss" --subset "$subset" --format json)
speed=$(build/release/ml_bench --benchmark_format=json)
python3 - "$rul" "$speed" <<'PY'
import json, sys
rul, speed = (json.loads(a) for a in sys.argv[1:])
by = {b["name"]: b for b in speed["benchmarks"]}
update, update_pct = by["BM_FeatureUpdate/0"], by["BM_FeatureUpdate/1"]
print("| benchmark | result |")
print("|---|---|")
print(f'| C-MAPSS {rul["subset"]} RUL (cap {rul["cap"]:.0f}): RMSE / PHM08 score | {rul["rmse"]:.2f} / {rul["score"]:.1f} |')
print(f'| training ({rul["train_rows"]} rows, {rul["features"]} features, 300 trees) | {rul["train_seconds"]:.1f} s |')
print(f'| online feature update, per sample per window / with p50 and p90 | '
      f'{1e9 / update["items_per_second"]:.0f} ns / {1e9 / update_pct["items_per_second"]:.0f} ns |')
print(f'| reading a device\'s features (3 windows × 6 aggregates / + p50, p90 over 86,400 samples) | '
      f'{by["BM_FeatureSnapshot/0"]["real_time"]:.0f} ns / {by["BM_FeatureSnapshot/1"]["real_time"] / 1e3:.2f} µs |')
print(f'| serving a device: sample, features, 300-tree prediction / with contributions | '
      f'{by["BM_ServeOneDevice/0"]["real_time"] / 1e3:.1f} µs / {by["BM_ServeOneDevice/1"]["real_time"] / 1e3:.0f} µs |')
PY
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
