#!/usr/bin/env bash
# ab-cold2.sh: ab-cold.sh with a variant "co" that uses the checkout's own files (no STACK_SHARE_DIR).
set -euo pipefail
. "$(git rev-parse --show-toplevel)/bench/stack.sh"
bench_build command ./bench/benchtool
ROUTER=http://127.0.0.1:$PLATFORM_PORT
OUTD=${OUTD:-/tmp/cs/out}; mkdir -p "$OUTD"
for i in $(seq 1 "${PAIRS:-3}"); do
  for v in ${ORDER:-a b}; do
    if [ $v = co ]; then unset STACK_SHARE_DIR; else export STACK_SHARE_DIR=/tmp/cs/$v; fi
    rm -rf "$STACK_STATE_DIR"
    "$BIN/benchtool" coldstart --runs 5 --up "'$BIN/stack' up --detach" --down "'$BIN/stack' down" \
      --url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json >"$OUTD/$v-$i.json"
    printf '%s-%s load=%s ' "$v" "$i" "$(cut -d' ' -f1 /proc/loadavg)"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print({k:v for k,v in d.items() if not isinstance(v,list)}, [round(x,1) if isinstance(x,(int,float)) else x for x in (d.get("runs_ms") or d.get("runs") or [])])' "$OUTD/$v-$i.json"
  done
done
