#!/usr/bin/env bash
# bench/ab.sh: the main figure of bench/run.sh alone (closed loop, c=64, 10 s,
# through HAProxy, then the drain check) on a fresh stack, for A/B comparisons.
# Run it alternately on the two variants, back to back, and compare accepted
# tx/s, the drain, and the CPU µs per transaction of each process: on these
# noisy 2-core machines one pair says little, several alternated pairs do.
#
#   bench/ab.sh before                          # a label for the report
#   bench/ab.sh after CHARGE_CONCURRENCY=4      # plus settings for this run
#   BENCH_DURATION=5s bench/ab.sh quick
#   BENCH_RATE=3000 bench/ab.sh open            # open loop at 3,000 tx/s
#   BENCH_RATE=3000 BENCH_ARRIVALS=poisson bench/ab.sh open-poisson
#                                               # the same with Poisson arrivals
#
# Settings are exported for the stack (stack.env's variables, or a service's
# own, such as CHARGE_CONCURRENCY or BATCH_SIZE); the stack itself is
# bench/stack.sh's, as bench/run.sh's (ports 180xx/150xx, HAProxy's access log
# "errors" unless BENCH_ACCESS_LOG or a HAPROXY_ACCESS_LOG setting says
# otherwise). The report is printed and saved as
# bench/results/ab/<UTC time>-<label>.txt.
set -euo pipefail

. "$(dirname "$0")/stack.sh"
label=${1:?usage: bench/ab.sh LABEL [VAR=value ...]}
shift
# After stack.sh, so that these settings win over its defaults.
for kv in "$@"; do
	case $kv in
	*=*) export "${kv?}" ;;
	*) echo "bench/ab.sh: $kv is not VAR=value" >&2; exit 2 ;;
	esac
done

OUT=$ROOT/bench/results/ab
mkdir -p "$OUT"
REPORT=$OUT/$(date -u +%Y%m%dT%H%M%SZ)-$label.txt
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
LG=("$LOADGEN" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64)
"${LG[@]}" --quiet --duration 2s >/dev/null # warm-up, not reported, closed loop
if [[ -n ${BENCH_RATE:-} ]]; then
	LG+=(--rate "$BENCH_RATE" --arrivals "${BENCH_ARRIVALS:-even}")
elif [[ -n ${BENCH_ARRIVALS:-} ]]; then
	echo "bench/ab.sh: BENCH_ARRIVALS=$BENCH_ARRIVALS needs BENCH_RATE (an open loop)" >&2
	exit 2
fi
{
	echo "ab: $label  settings: ${*:-(none)}${BENCH_RATE:+  open loop at $BENCH_RATE tx/s, ${BENCH_ARRIVALS:-even} arrivals}  commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty)')  load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"${LG[@]}" --quiet --watch-pid "$PC_PID" --duration "${BENCH_DURATION:-10s}"
} | tee "$REPORT"
echo "saved: $REPORT" >&2
