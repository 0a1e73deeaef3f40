#!/usr/bin/env bash
# Runs the image fuzzer for SECONDS, its corpus seeded with the golden images
# (Tests/TestData/*/model.csd) and the images in FUZZ_EXTRA_SEEDS (paths, space-separated; the
# Makefile adds the reference model packed with attention units); the custom mutator recomputes the
# CRC for most mutations.
# SEED is libFuzzer's random seed (default: a fresh one), printed first so a finding can be
# replayed with `make fuzz-smoke FUZZ_SEED=N`. Ends with
#   fuzz: seed=N execs=N findings=F seconds=S execs_per_second=R
# and exits non-zero on any finding (crash, sanitizer report, leak, timeout).
# Usage: run.sh BUILD_DIR SECONDS [SEED]
set -uo pipefail
build=$1; seconds=$2; seed=${3:-}
[ -n "$seed" ] || seed=$(( $(od -An -N4 -tu4 /dev/urandom) % 2147483647 + 1 ))
echo "fuzz: seed=$seed seconds=$seconds"
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$build/run
rm -rf "$work" && mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
for d in "$root"/Tests/TestData/*/; do cp "$d/model.csd" "$work/seeds/$(basename "$d").csd"; done
for f in ${FUZZ_EXTRA_SEEDS:-}; do cp "$f" "$work/seeds/"; done
(cd "$work" && "$build/fuzz-image" -seed="$seed" -max_total_time="$seconds" -max_len=200000 -timeout=20 -rss_limit_mb=2048 \
   -print_final_stats=1 -artifact_prefix=artifacts/ corpus seeds > fuzz.log 2>&1)
status=$?
execs=$(grep -oE 'Done [0-9]+ runs' "$work/fuzz.log" | grep -oE '[0-9]+' | tail -1)
[ -n "$execs" ] || execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/fuzz.log" | grep -oE '[0-9]+$' | tail -1)
secs=$(grep -oE 'runs in [0-9]+ second' "$work/fuzz.log" | grep -oE '[0-9]+' | tail -1)
findings=$(find "$work/artifacts" -type f | wc -l)
[ "$status" -eq 0 ] || [ "$findings" -gt 0 ] || findings=1
rate=$(( ${execs:-0} / ${secs:-1} ))
if [ "$findings" -gt 0 ]; then tail -40 "$work/fuzz.log"; fi
echo "fuzz: seed=$seed execs=${execs:-0} findings=$findings seconds=${secs:-0} execs_per_second=$rate"
[ "$findings" -eq 0 ]
