#!/usr/bin/env bash
# A/B: the enqueue->processed tail at 3,000 tx/s, process-compose's threads under SCHED_BATCH (set after the stack started) vs default.
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
  "${LG[@]}" --quiet --duration 2s >/dev/null
  "${LG[@]}" --quiet --json --watch-pid "$PC_PID" --rate "${RATE:-3000}" --duration 10s > $OUT/tail-$pair-$v.json || true
  python3 - $OUT/tail-$pair-$v.json $pair $v <<'P'
import json,sys;d=json.load(open(sys.argv[1]));l=d['latency_ms'];e=l['enqueue_to_processed'];t=l['tx']
c=d['cpu'];n=d['tx_accepted']
print('pair',sys.argv[2],'%-8s'%sys.argv[3],'e2e p50 %.2f p99 %.2f max %.1f | tx p50 %.2f p99 %.2f |'%(e['p50_ms'],e['p99_ms'],e['max_ms'],t['p50_ms'],t['p99_ms']),' '.join('%s=%d'%(k[:5],round(v/n*1e6)) for k,v in c['processes_cpu_s'].items()),'gen=%d busy %.1f/%.1f'%(round(c['generator_cpu_s']/n*1e6),c['machine_busy_cpu_s'],c['machine_available_cpu_s']),flush=True)
P
 done
done
