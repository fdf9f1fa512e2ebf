#!/usr/bin/env bash
# perf record -g of auth-api for 6 s of a token load through HAProxy (c=64,
# 12 s, the load of bench/run.sh's phase 4) on a fresh stack of
# bench/stack.sh's; the reports by DSO and by symbol go to $OUT.
set -euo pipefail
log() { :; }
. "$(dirname "$0")/../../stack.sh"
OUT=${OUT:-/tmp/auth-api-profile-$(date +%H%M%S)}
mkdir -p "$OUT"
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
# This stack's auth-api: process-compose runs in a session of its own (setsid).
pid=$(pgrep -x -s "$(cat "$STACK_STATE_DIR/process-compose.pid")" auth-api)
"$LOADGEN" --quiet --json --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" --mode token -c 64 --duration 12s >"$OUT/tokens.json" &
load=$!
sleep 3
perf record -g -p "$pid" -o "$OUT/perf.data" -- sleep 6 2>/dev/null
wait "$load"
perf report -i "$OUT/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^$' | head -14 >"$OUT/dso.txt"
perf report -i "$OUT/perf.data" --no-children --sort sym -g none 2>/dev/null | grep -v '^$' | head -60 >"$OUT/sym.txt"
jq .tokens_per_s "$OUT/tokens.json"
