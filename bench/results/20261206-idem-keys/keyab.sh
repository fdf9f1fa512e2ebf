#!/usr/bin/env bash
# keyab.sh CHECKOUT LABEL [LOADGEN-FLAG...]: a fresh stack of CHECKOUT's bench/stack.sh (so with
# that checkout's haproxy.cfg), 2 s of warm-up, then 10 s of the closed transaction loop (c=64,
# through HAProxy) with the CPU of every process (--watch-pid), into /tmp/keyab-LABEL.json; then
# Redis's used_memory before and after, over the transactions the stream ever took (entries-added).
set -euo pipefail
checkout=$1 label=$2
shift 2
log() { :; }
. "$checkout/bench/stack.sh"
bench_build command >/dev/null 2>&1
"$STACK" up --detach --wait --timeout 120s >/dev/null 2>&1
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 "$@")
redis_memory() { redis-cli -s "$REDIS_SOCK" INFO memory | awk -F: '/^used_memory:/{print $2+0}'; }
mem_before=$(redis_memory)
"${LG[@]}" --duration 2s >/dev/null
"${LG[@]}" --duration 10s --watch-pid "$PC_PID" >"/tmp/keyab-$label.json"
jq -r --arg l "$label" '"\($l) keys=\(.idempotency_keys // false) tx/s \(.tx_accepted_per_s|floor) us/tx: haproxy \(.cpu.processes_cpu_s.haproxy*1e6/.tx_accepted|floor) core-api \(.cpu.processes_cpu_s["core-api"]*1e6/.tx_accepted|floor) redis \(.cpu.processes_cpu_s["redis-server"]*1e6/.tx_accepted|floor) stack \(([.cpu.processes_cpu_s[]]|add)*1e6/.tx_accepted|floor) verdict \(.verdict)"' "/tmp/keyab-$label.json"
mem_after=$(redis_memory)
added=$(redis-cli -s "$REDIS_SOCK" XINFO STREAM transactions | awk 'prev=="entries-added"{print; exit} {prev=$0}')
echo "$label redis used_memory $mem_before -> $mem_after over $added transactions: $(((mem_after - mem_before) / added)) bytes each"
