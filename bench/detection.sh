#!/usr/bin/env bash
# Anomaly detection (issue 5): the default detectors scored with the benchmarks' own protocols
# on the shared labelled data (fieldline eval nab|skab), and their throughput on one core
# (analytics_bench). Prints one table.
#   bench/detection.sh [datasets folder, default ../shared/datasets]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/datasets}"
tools/setup.sh
tools/build.sh release >/dev/null
nab=$(build/release/fieldline eval nab --data "$data/nab" --format json)
skab=$(build/release/fieldline eval skab --data "$data/skab" --format json)
speed=$(build/release/analytics_bench --benchmark_filter=Ensemble --benchmark_format=json)
python3 - "$nab" "$skab" "$speed" <<'PY'
import json, sys
nab, skab, speed = (json.loads(a) for a in sys.argv[1:])
rate = speed["benchmarks"][0]["items_per_second"]
cp = skab["changepoint_nab"]
print("| benchmark | result |")
print("|---|---|")
print(f'| NAB ({nab["files"]} files, {nab["windows"]} windows): standard / low FP / low FN | '
      f'{nab["standard"]:.2f} / {nab["reward_low_FP_rate"]:.2f} / {nab["reward_low_FN_rate"]:.2f} |')
print(f'| SKAB ({skab["files"]} files): F1 / FAR % / MAR % | {skab["f1"]:.2f} / {skab["far"]:.2f} / {skab["mar"]:.2f} |')
print(f'| SKAB changepoints, NAB standard / low FP / low FN | {cp["standard"]:.2f} / {cp["reward_low_FP_rate"]:.2f} / '
      f'{cp["reward_low_FN_rate"]:.2f} ({cp["windows"]} windows, {cp["missed"]} missed, {cp["false_positives"]} false positives) |')
print(f'| default detector set, one core | {rate / 1e6:.2f} M samples/s |')
PY
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
