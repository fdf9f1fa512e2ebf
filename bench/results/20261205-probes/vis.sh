#!/usr/bin/env bash
# throwaway: how long process-compose takes to show redis Not Ready after SIGSTOP, and Ready after SIGCONT
set -euo pipefail
cd "$1"
. bench/stack.sh
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
rdy() { "$STACK" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([p for p in d["processes"] if p["name"]=="redis"][0]["ready"])' ; }
ready() { "$STACK" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([p for p in d["processes"] if p["name"]=="redis"][0])' ; }
ready
for round in 1 2 3; do
  sleep $((RANDOM % 5)).$((RANDOM % 10))
  pid=$(cat /dev/null; pgrep -f "redis-server.*$STACK_STATE_DIR" | head -1)
  t0=$(date +%s.%N); kill -STOP "$pid"
  until [[ $(rdy) == False ]]; do sleep 0.1; done
  t1=$(date +%s.%N); kill -CONT "$pid"
  until [[ $(rdy) == True ]]; do sleep 0.1; done
  t2=$(date +%s.%N)
  echo "$2 round $round: not ready shown $(echo "$t1-$t0" | bc) s after STOP; ready shown $(echo "$t2-$t1" | bc) s after CONT"
done
