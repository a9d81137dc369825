#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (preset `fuzz`), replays each committed corpus in
# tests/fuzz/<target>/corpus, then fuzzes each target for N seconds (default 15). A crash
# fails the script and leaves the reproducer in build/fuzz/crashes/<target>/: add it to the
# corpus and write a unit test for it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
tools/build.sh fuzz
for target in mqtt_decode json_telemetry line_protocol wal_reader block_reader chunk_decode contract_parse senml mapping_decode rawlog_reader benchmark_files rule_condition detector_state detector_document alarm_record feature_view model_artifact kpi_definition; do
  corpus="tests/fuzz/$target/corpus"
  work="build/fuzz/corpus/$target"
  crashes="build/fuzz/crashes/$target"
  mkdir -p "$work" "$crashes"
  dict=()
  [[ -f "tests/fuzz/$target/dict" ]] && dict=(-dict="tests/fuzz/$target/dict")
  echo "-- $target: replaying $(ls "$corpus" | wc -l) corpus files"
  "build/fuzz/tests/fuzz/fuzz_$target" -runs=0 "${dict[@]}" "$corpus" >/dev/null 2>&1 || {
    echo "FAIL: $target crashed on its own corpus"; "build/fuzz/tests/fuzz/fuzz_$target" -runs=0 "$corpus"; exit 1; }
  echo "-- $target: fuzzing for $seconds s"
  "build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -artifact_prefix="$crashes/" "${dict[@]}" "$work" "$corpus" > "build/fuzz/$target.log" 2>&1 || {
    echo "FAIL: $target found a crash:"; tail -40 "build/fuzz/$target.log"; exit 1; }
  tail -1 "build/fuzz/$target.log"
done
