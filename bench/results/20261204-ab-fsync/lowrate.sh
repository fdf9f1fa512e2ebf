#!/usr/bin/env bash
# Redis's CPU and command counts during an open-loop load at 500 tx/s on a
# fresh bench stack (bench/stack.sh), after a 2 s closed-loop warm-up.
#   REDIS_APPENDFSYNC=no bash bench/results/20261204-ab-fsync/lowrate.sh
set -euo pipefail
. bench/stack.sh
bench_build command
"$STACK" up --detach --wait --timeout 60s >/dev/null 2>&1
R=(redis-cli -s "$REDIS_SOCK")
LG=("$LOADGEN" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64)
"${LG[@]}" --quiet --duration 2s >/dev/null
sleep 2
"${R[@]}" config resetstat >/dev/null
RP=$("${R[@]}" info server | awk -F: '/^process_id:/ {print $2 + 0}')
a=$(awk '{print $14+$15}' "/proc/$RP/stat")
echo "appendfsync $("${R[@]}" config get appendfsync | tail -1), open loop 500 tx/s for 10 s"
"${LG[@]}" --rate 500 --quiet --duration 10s --watch-pid "$(cat "$STACK_STATE_DIR/process-compose.pid")" | grep -E "^load|enqueue_to|^cpu"
b=$(awk '{print $14+$15}' "/proc/$RP/stat")
echo "redis-server CPU during the load: $(((b - a) * 10)) ms"
"${R[@]}" info commandstats | grep -E "evalsha|xreadgroup|xadd|xack"
"${R[@]}" info stats | grep -E "total_commands_processed"
