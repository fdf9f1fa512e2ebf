#!/usr/bin/env bash
# perf sched latency of the stack's processes during one light overhead pair (100/s each)
set -euo pipefail
log() { :; }
. /work/main/bench/stack.sh
OUT=/tmp/exp/sched-$(date +%H%M%S); mkdir -p $OUT
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
ROUTER=http://127.0.0.1:$PLATFORM_PORT
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
"${LG[@]}" --target "$ROUTER" -c 64 --duration 2s >/dev/null
OPEN=(-c 64 --rate 100 --duration 10s)
"${LG[@]}" --target "$ROUTER" "${OPEN[@]}" >"$OUT/router.json" & a=$!
"${LG[@]}" "${DIRECT[@]}" "${OPEN[@]}" >"$OUT/direct.json" & b=$!
sleep 2
perf sched record -o $OUT/perf.data -- sleep 5 2>$OUT/perf-record.err
wait $a $b
perf sched latency -i $OUT/perf.data --sort max 2>/dev/null > $OUT/latency.txt || true
perf sched latency -i $OUT/perf.data 2>/dev/null > $OUT/latency-runtime.txt || true
echo "router $(jq -c '.latency_ms.tx|[.p50_ms,.p99_ms]' $OUT/router.json) direct $(jq -c '.latency_ms.tx|[.p50_ms,.p99_ms]' $OUT/direct.json)"
echo $OUT
