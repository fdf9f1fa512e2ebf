#!/usr/bin/env bash
# A/B: the connector's charge-to-record window in the running stack
# (perf trace of its writes at 3,000 tx/s), process-compose default vs SCHED_BATCH.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(mktemp -d)}
. "$HERE/../../stack.sh"
bench_build command
LG=("$LOADGEN" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64)
for pair in ${PAIRS:-1 2 3}; do
 for v in ${ORDER:-default batch}; do
  "$STACK" down >/dev/null 2>&1 || true
  rm -rf "$STACK_STATE_DIR"
  "$STACK" up --detach --wait --timeout 120s >/dev/null
  PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
  if [ $v = batch ]; then chrt -a -b -p 0 $PC_PID; fi
  CONN=$(pgrep -x psp-connector)
  "${LG[@]}" --quiet --duration 2s >/dev/null
  perf trace -e write -p "$CONN" -o $OUT/trace-$pair-$v.txt -- sleep 8 &
  TR=$!
  sleep 0.5
  "${LG[@]}" --quiet --json --rate "${RATE:-3000}" --duration 6s > $OUT/w-$pair-$v.json || true
  wait $TR || true
  python3 "$HERE/window.py" $OUT/trace-$pair-$v.txt "pair $pair $v"
 done
done
