#!/usr/bin/env bash
# throwaway: open loop at RATE, then dump every status record's enqueued_at/processed_at
set -euo pipefail
cd ${ROOTDIR:-/work/main}
. bench/stack.sh
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
"$LOADGEN" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --quiet --duration 2s >/dev/null
redis-cli -s "$REDIS_SOCK" --scan --pattern 'transaction:*' | awk '{print "DEL "$1}' | redis-cli -s "$REDIS_SOCK" >/dev/null
"$LOADGEN" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --quiet --rate "${RATE:-4000}" --duration "${DUR:-10s}" ${LGARGS:-} | tee /tmp/exp/report-$1.txt
redis-cli -s "$REDIS_SOCK" --scan --pattern 'transaction:*' | awk '{print "HMGET "$1" created_at processed_at"}' | redis-cli -s "$REDIS_SOCK" | paste - - > /tmp/exp/rec-$1.txt
cp -r "$STACK_STATE_DIR/logs" /tmp/exp/logs-$1
wc -l /tmp/exp/rec-$1.txt
