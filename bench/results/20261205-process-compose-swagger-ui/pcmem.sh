#!/usr/bin/env bash
# usage: pcmem.sh  (env passed to stack up)
set -euo pipefail
. /work/main/bench/stack.sh
bench_build env ./bench/benchtool >/dev/null
"$STACK" up --detach --wait --timeout 120s >/dev/null
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
sleep 3
"$BIN/benchtool" rss --pid "$PC_PID" >&2
grep -E "^(Rss|Anonymous|Pss)" /proc/$PC_PID/smaps_rollup >&2
if [ -n "${PCMEM_HOLD:-}" ]; then echo "holding: pid $PC_PID state $STACK_STATE_DIR"; sleep "$PCMEM_HOLD"; fi
