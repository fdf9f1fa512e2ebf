#!/usr/bin/env bash
# The profiles of BENCHMARKS.md's "The open loop's CPU": loadgen alone (no
# verification) against a running stack, once under perf's CPU clock and
# once recording its thread switches, then summarised per request sent.
#
#   TARGET=http://127.0.0.1:19980 LOADGEN=/path/to/loadgen RATE=2000 bench/results/20261206-loadgen-open-loop/profile.sh
#
# RATE=0 is the closed loop (-c 64). Data and summaries in $OUT.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/loadgen-profile-$(date +%H%M%S)}
mkdir -p "$OUT"
ARGS=(--redis-url none --verify none --target "${TARGET:?}" -c 64 --quiet --json --duration "${DURATION:-5s}")
[[ ${RATE:-2000} != 0 ]] && ARGS+=(--rate "${RATE:-2000}")
perf record -F 4999 -e cpu-clock -g -o "$OUT/cpu.data" "${LOADGEN:?}" "${ARGS[@]}" >"$OUT/cpu.json" 2>/dev/null
perf record -e sched:sched_switch -g -o "$OUT/switch.data" "$LOADGEN" "${ARGS[@]}" >"$OUT/switch.json" 2>/dev/null
python3 "$HERE/cpu_buckets.py" "$OUT/cpu.data" "$(jq .tx_sent "$OUT/cpu.json")" | tee "$OUT/cpu.txt"
python3 "$HERE/under.py" "$OUT/cpu.data" "$(jq .tx_sent "$OUT/cpu.json")" runtime.findRunnable 1 | tee -a "$OUT/cpu.txt"
python3 "$HERE/switches.py" "$OUT/switch.data" "$(jq .tx_sent "$OUT/switch.json")" | tee "$OUT/switches.txt"
