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
#
# Settings are exported for the stack (stack.env's variables, or a service's
# own, such as CHARGE_CONCURRENCY or BATCH_SIZE). The report is printed and
# saved as bench/results/ab/<UTC time>-<label>.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
label=${1:?usage: bench/ab.sh LABEL [VAR=value ...]}
shift
for kv in "$@"; do
	case $kv in
	*=*) export "${kv?}" ;;
	*) echo "bench/ab.sh: $kv is not VAR=value" >&2; exit 2 ;;
	esac
done

OUT=$ROOT/bench/results/ab
mkdir -p "$OUT"
REPORT=$OUT/$(date -u +%Y%m%dT%H%M%SZ)-$label.txt
WORK=$(mktemp -d /tmp/acme-ab.XXXXXX)
export STACK_STATE_DIR=$WORK/state
unset STACK_SHARE_DIR REDIS_URL JWT_SECRET
export PLATFORM_PORT=${BENCH_PLATFORM_PORT:-28080} HAPROXY_STATS_PORT=${BENCH_STATS_PORT:-28404}
export AUTH_API_PORT=${BENCH_AUTH_API_PORT:-25001} CORE_API_PORT=${BENCH_CORE_API_PORT:-25002}
export PSP_CONNECTOR_PORT=${BENCH_PSP_CONNECTOR_PORT:-25003}
export AUTH_RATE_LIMIT=1000000000 HAPROXY_ACCESS_LOG=${HAPROXY_ACCESS_LOG:-errors}
BIN=$WORK/bin

go build -o "$BIN/" ./cmd/stack ./cmd/loadgen ./services/auth-api ./services/core-api ./services/psp-connector
if ! command -v process-compose >/dev/null; then
	go build -C tools -o "$BIN/process-compose" github.com/f1bonacc1/process-compose/src
fi
export PATH=$BIN:$PATH
trap '"$BIN/stack" down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
"$BIN/stack" up --detach --wait --timeout 120s >/dev/null
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
LG=("$BIN/loadgen" --redis-url "unix://$STACK_STATE_DIR/redis/redis.sock" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64)
"${LG[@]}" --quiet --duration 2s >/dev/null # warm-up, not reported
{
	echo "ab: $label  settings: ${*:-(none)}  commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty)')  load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"${LG[@]}" --quiet --watch-pid "$PC_PID" --duration "${BENCH_DURATION:-10s}"
} | tee "$REPORT"
echo "saved: $REPORT" >&2
