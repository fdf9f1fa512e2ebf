#!/usr/bin/env bash
# drops.sh: HAProxy's dropped access-log lines under a closed-loop load (c=64,
# 10 s, HAPROXY_ACCESS_LOG=all), with its default threads (2 here; the
# variant "default") vs one thread ("nbt1"), on a fresh bench stack each:
# requests sent, tx/s, HAProxy's CPU per transaction, the lines in
# logs/haproxy.log, and haproxy_process_dropped_logs_total from /metrics.
# Since haproxy.cfg itself sets `nbthread 1` with HAPROXY_ACCESS_LOG=all, the
# "default" variant runs a copy of the stack's files without that line.
set -euo pipefail
export BENCH_ACCESS_LOG=${ACCESS:-all}
. "$(cd "$(dirname "$0")" && pwd)/../../stack.sh"
SHARE2=$WORK/share-default-threads; mkdir -p $SHARE2; cp -r process-compose.yaml haproxy.cfg haproxy-errors stack.env $SHARE2/
sed -i '/^    nbthread 1$/d' $SHARE2/haproxy.cfg
grep -q 'nbthread' $SHARE2/haproxy.cfg && { echo "drops.sh: could not remove nbthread from the copy" >&2; exit 1; }
bench_build command
for pair in ${PAIRS:-1 2}; do
 for v in ${ORDER:-default nbt1}; do
  "$STACK" down >/dev/null 2>&1 || true
  rm -rf "$STACK_STATE_DIR"
  if [ $v = default ]; then export STACK_SHARE_DIR=$SHARE2; else unset STACK_SHARE_DIR; fi
  "$STACK" up --detach --wait --timeout 120s >/dev/null
  PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
  "$LOADGEN" --quiet --json --watch-pid "$PC_PID" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --duration ${DUR:-10s} > $WORK/r.json || true
  sleep 1
  drops=$(curl -s "http://127.0.0.1:$HAPROXY_STATS_PORT/metrics" | grep '^haproxy_process_dropped_logs_total' | awk '{print $2}')
  lines=$(grep -c '"status"' "$STACK_STATE_DIR/logs/haproxy.log" || true)
  python3 - $WORK/r.json "pair $pair $v access=$BENCH_ACCESS_LOG" "$lines" "$drops" <<'P'
import json,sys
d=json.load(open(sys.argv[1]));n=d['tx_accepted'];c=d['cpu']['processes_cpu_s']
print(sys.argv[2],'requests',d['tx_sent']+d['tokens'],'tx/s %.0f'%d['tx_accepted_per_s'],'haproxy us/tx %.1f'%(c['haproxy']/n*1e6),'busy %.1f/%.1f'%(d['cpu']['machine_busy_cpu_s'],d['cpu']['machine_available_cpu_s']),'log lines',sys.argv[3],'dropped',sys.argv[4],flush=True)
P
 done
done
