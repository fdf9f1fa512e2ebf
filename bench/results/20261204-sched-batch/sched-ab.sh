#!/usr/bin/env bash
# A/B at 3,000 tx/s, open loop: process-compose's threads under SCHED_BATCH
# (set after the stack started, so the services keep the normal policy) vs the
# default policy, on a fresh bench stack (bench/stack.sh) per variant.
#
#   sched-ab.sh window   # perf trace of psp-connector's writes: its charge-to-record window (window.py)
#   sched-ab.sh tail     # 10 s with --watch-pid: enqueue->processed and CPU per process
#   PAIRS="2 3" ORDER="batch default" sched-ab.sh window
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MEASURE=${1:?usage: sched-ab.sh window|tail}
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
		if [ "$v" = batch ]; then chrt -a -b -p 0 "$PC_PID"; fi
		"${LG[@]}" --quiet --duration 2s >/dev/null # warm-up
		case $MEASURE in
		window)
			perf trace -e write -p "$(pgrep -x psp-connector)" -o "$OUT/trace-$pair-$v.txt" -- sleep 8 &
			TR=$!
			sleep 0.5
			"${LG[@]}" --quiet --json --rate "${RATE:-3000}" --duration 6s >"$OUT/w-$pair-$v.json" || true
			wait $TR || true
			python3 "$HERE/window.py" "$OUT/trace-$pair-$v.txt" "pair $pair $v"
			;;
		tail)
			"${LG[@]}" --quiet --json --watch-pid "$PC_PID" --rate "${RATE:-3000}" --duration 10s >"$OUT/tail-$pair-$v.json" || true
			python3 "$HERE/tail.py" "$OUT/tail-$pair-$v.json" "pair $pair $v"
			;;
		*) echo "sched-ab.sh: measure window or tail, not $MEASURE" >&2; exit 2 ;;
		esac
	done
done
