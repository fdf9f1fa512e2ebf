#!/usr/bin/env bash
# lightab.sh CHECKOUT LABEL [CPUS] (results in /tmp/lab): a fresh stack of CHECKOUT, then bench/run.sh's phase 2c:
# 100/s Poisson through HAProxy and 100/s direct at the same time, 10 s, twice; p50 difference. With CPUS, the
# stack and both load generators run under `taskset -c CPUS` (../20261206-pinned/).
set -euo pipefail
mkdir -p /tmp/lab
checkout=$1 label=$2 cpus=${3-}
PIN=()
[ -n "$cpus" ] && PIN=(taskset -c "$cpus")
log() { :; }
. "$checkout/bench/stack.sh"
bench_build command >/dev/null 2>&1
"${PIN[@]}" "$STACK" up --detach --wait --timeout 120s >/dev/null 2>&1
LG=("${PIN[@]}" "$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
"${LG[@]}" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --duration 2s >/dev/null
for i in 1 2; do
  OPEN=(-c 64 --rate 100 --arrivals poisson --duration 10s)
  "${LG[@]}" --target "http://127.0.0.1:$PLATFORM_PORT" "${OPEN[@]}" >"/tmp/lab/$label-router-$i.json" &
  a=$!
  "${LG[@]}" "${DIRECT[@]}" "${OPEN[@]}" >"/tmp/lab/$label-direct-$i.json" &
  b=$!
  wait $a; wait $b
  r=$(jq '.latency_ms.tx.p50_ms' "/tmp/lab/$label-router-$i.json"); d=$(jq '.latency_ms.tx.p50_ms' "/tmp/lab/$label-direct-$i.json")
  echo "$label pair $i: router p50 $r direct p50 $d overhead $(echo "$r - $d" | bc -l)"
done
"$STACK" down >/dev/null 2>&1
