#!/usr/bin/env bash
# tokab.sh CHECKOUT LABEL: tokens/s through HAProxy on a fresh stack of CHECKOUT's bench/stack.sh, then 10 s closed loop tx
set -euo pipefail
label=$2
log() { :; }
. "$1/bench/stack.sh"
bench_build command >/dev/null 2>&1
"$STACK" up --detach --wait --timeout 120s >/dev/null 2>&1
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64)
"${LG[@]}" --mode token --duration 2s >/dev/null
"${LG[@]}" --mode token --duration 10s --watch-pid "$PC_PID" > /tmp/tokab-$label-tok.json
"${LG[@]}" --duration 10s --watch-pid "$PC_PID" > /tmp/tokab-$label-tx.json
jq -r --arg l "$label" '"\($l) tokens/s \(.tokens_per_s|floor) haproxy_s \(.cpu.processes_cpu_s.haproxy)"' /tmp/tokab-$label-tok.json
jq -r --arg l "$label" '"\($l) tx/s \(.tx_accepted_per_s|floor) haproxy_s \(.cpu.processes_cpu_s.haproxy) verdict \(.verdict)"' /tmp/tokab-$label-tx.json
