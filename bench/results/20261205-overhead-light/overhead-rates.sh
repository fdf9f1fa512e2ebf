#!/usr/bin/env bash
# fig 2 on a fresh stack, right after the saturation phases, and after 30 s idle
set -euo pipefail
log() { printf '\n== %s %s\n' "$(date +%T)" "$*" >&2; }
. /work/main/bench/stack.sh
OUT=/tmp/exp/overhead-$(date +%H%M%S); mkdir -p $OUT
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
ROUTER=http://127.0.0.1:$PLATFORM_PORT
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
pair() {
  local tag=$1 rate=${2:-1000}
  OPEN=(-c 64 --rate $rate --duration 10s)
  "${LG[@]}" --target "$ROUTER" "${OPEN[@]}" >"$OUT/$tag-router.json" & a=$!
  "${LG[@]}" "${DIRECT[@]}" "${OPEN[@]}" >"$OUT/$tag-direct.json" & b=$!
  wait $a $b
  echo "$tag router $(jq -c '.latency_ms.tx|[.p50_ms,.p99_ms]' $OUT/$tag-router.json) direct $(jq -c '.latency_ms.tx|[.p50_ms,.p99_ms]' $OUT/$tag-direct.json) rewrites $(redis-cli -s $REDIS_SOCK INFO persistence | tr -d '\r' | grep -E '^aof_rewrites:' )"
}
"${LG[@]}" --target "$ROUTER" -c 64 --duration 2s >/dev/null
for round in 1 2; do for r in 100 250 500 1000; do pair "r$r-$round" $r; done; done
