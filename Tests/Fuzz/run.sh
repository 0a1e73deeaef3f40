#!/usr/bin/env bash
# Runs the image fuzzer for SECONDS, seeded with the golden images (Tests/TestData/*/model.csd);
# the custom mutator recomputes the CRC for most mutations. Ends with
#   fuzz: execs=N findings=F seconds=S execs_per_second=R
# and exits non-zero on any finding (crash, sanitizer report, leak, timeout).
set -uo pipefail
build=$1; seconds=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$build/run
rm -rf "$work" && mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
for d in "$root"/Tests/TestData/*/; do cp "$d/model.csd" "$work/seeds/$(basename "$d").csd"; done
(cd "$work" && "$build/fuzz-image" -max_total_time="$seconds" -max_len=200000 -timeout=20 -rss_limit_mb=2048 \
   -print_final_stats=1 -artifact_prefix=artifacts/ corpus seeds > fuzz.log 2>&1)
status=$?
execs=$(grep -oE 'Done [0-9]+ runs' "$work/fuzz.log" | grep -oE '[0-9]+' | tail -1)
[ -n "$execs" ] || execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/fuzz.log" | grep -oE '[0-9]+$' | tail -1)
secs=$(grep -oE 'runs in [0-9]+ second' "$work/fuzz.log" | grep -oE '[0-9]+' | tail -1)
findings=$(find "$work/artifacts" -type f | wc -l)
[ "$status" -eq 0 ] || [ "$findings" -gt 0 ] || findings=1
rate=$(( ${execs:-0} / ${secs:-1} ))
if [ "$findings" -gt 0 ]; then tail -40 "$work/fuzz.log"; fi
echo "fuzz: execs=${execs:-0} findings=$findings seconds=${secs:-0} execs_per_second=$rate"
[ "$findings" -eq 0 ]
