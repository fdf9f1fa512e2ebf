#!/usr/bin/env bash
# bench/run.sh: measures the local stack, every figure of BENCHMARKS.md in one
# run on one machine, so that the numbers can be compared side by side.
#
#   bench/run.sh                     # 10 s per load phase, results in bench/results/<UTC time>/
#   BENCH_DURATION=5s bench/run.sh   # shorter
#   BENCH_ACCESS_LOG=all bench/run.sh # HAProxy logs every request (stack.env's default)
#
# It starts its own stack (fresh state in a temporary directory, ports
# 180xx/150xx) so that it never touches a developer's stack on 8080, with
# AUTH_RATE_LIMIT raised so the token benchmark is not throttled. Every command
# it runs is echoed (prefixed "+") into $OUT/commands.txt; raw JSON results go
# to $OUT; the summary table (markdown) is printed at the end and saved as
# $OUT/summary.md.
set -euo pipefail

. "$(dirname "$0")/stack.sh"

DURATION=${BENCH_DURATION:-10s}
CONC=${BENCH_CONCURRENCY:-64}
OVERHEAD_RATE=${BENCH_OVERHEAD_RATE:-2000}
OVERHEAD_LIGHT_RATE=${BENCH_OVERHEAD_LIGHT_RATE:-200}
XADD_REQUESTS=${BENCH_XADD_REQUESTS:-300000}
COLD_RUNS=${BENCH_COLD_RUNS:-5}
OUT=${BENCH_OUT:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

ROUTER=http://127.0.0.1:$PLATFORM_PORT

log() { printf '\n== %s\n' "$*" >&2; }
# x runs a command after echoing it, and records it in commands.txt.
x() {
	printf '+ %s\n' "$*" | tee -a "$OUT/commands.txt" >&2
	"$@"
}

log "machine"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty)')"
	echo "cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "kernel: $(uname -sr)"
	echo "go: $(go version)"
	echo "haproxy: $(haproxy -v | sed -n 1p)"
	echo "redis: $(redis-server --version)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "stack.local.env: $(if [ -f stack.local.env ]; then echo present, its settings apply:; grep -v '^#' stack.local.env | tr '\n' ' '; else echo none; fi)"
	echo "REDIS_APPENDFSYNC: ${REDIS_APPENDFSYNC:-(stack.env default)}"
	echo "HAPROXY_ACCESS_LOG: $HAPROXY_ACCESS_LOG (stack.env default: all)"
	echo "settings: duration=$DURATION concurrency=$CONC overhead_rate=$OVERHEAD_RATE overhead_light_rate=$OVERHEAD_LIGHT_RATE state=$STACK_STATE_DIR platform_port=$PLATFORM_PORT"
} | tee "$OUT/machine.txt" >&2

log "build"
bench_build x ./bench/benchtool
BENCHTOOL=$BIN/benchtool

COLD=(--up "'$BIN/stack' up --detach" --down "'$BIN/stack' down"
	--url "$ROUTER/auth/health" --url "$ROUTER/transaction/health")
log "6a. cold start (binaries built, empty state) to both routes answering 200, $COLD_RUNS runs"
x "$BIN/benchtool" coldstart --runs "$COLD_RUNS" "${COLD[@]}" --json >"$OUT/coldstart.json"

log "start the stack"
"$STACK" down >/dev/null 2>&1 || true
x "$STACK" up --detach --wait --timeout 120s
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")

log "7a. memory, idle"
sleep 2
x "$BENCHTOOL" rss --pid "$PC_PID" --json >"$OUT/rss-idle.json"
"$BENCHTOOL" rss --pid "$PC_PID" >&2

# lg runs the load generator; a failed verification is recorded, not fatal,
# so that the other figures are still measured (the script exits 1 at the end).
# lg_unwatched is the same without the per-process CPU (--watch-pid).
lg_unwatched() { x "$LOADGEN" --quiet --json --redis-url "$REDIS_URL" "$@" || { echo "bench: loadgen failed (see above)" >&2; FAILED=1; }; }
lg() { lg_unwatched --watch-pid "$PC_PID" "$@"; }

log "0. calibration: the load generator and HAProxy alone, in front of a trivial handler (benchtool echo)"
# Same haproxy.cfg, both backends pointed at the trivial handler, HAProxy's
# logs discarded: the ceiling on this machine right now, which every stack
# figure below is compared with.
ECHO_PORT=${BENCH_ECHO_PORT:-15010}
CAL_PORT=${BENCH_CAL_PORT:-18090}
# HAProxy reaches it on a unix socket, as it reaches the stack's services.
ECHO_SOCK=$WORK/echo.sock
"$BENCHTOOL" echo --addr "127.0.0.1:$ECHO_PORT" --socket "$ECHO_SOCK" 2>/dev/null &
ECHO_PID=$!
PLATFORM_PORT=$CAL_PORT HAPROXY_STATS_PORT=${BENCH_CAL_STATS_PORT:-18494} AUTH_API_SERVER=unix@$ECHO_SOCK CORE_API_SERVER=unix@$ECHO_SOCK \
	haproxy -db -f "$ROOT/haproxy.cfg" >/dev/null 2>&1 &
HAP_PID=$!
for _ in $(seq 100); do
	curl -fs -o /dev/null "http://127.0.0.1:$CAL_PORT/transaction/health" && break
	sleep 0.05
done
cal() { x "$LOADGEN" --quiet --json --redis-url none --verify none "$@" || { echo "bench: loadgen failed" >&2; FAILED=1; }; }
FAILED=0
cal --target "http://127.0.0.1:$CAL_PORT" -c "$CONC" --duration 2s >/dev/null
cal --target "http://127.0.0.1:$CAL_PORT" -c "$CONC" --duration "$DURATION" >"$OUT/cal-router.json"
cal --token-url "http://127.0.0.1:$ECHO_PORT/token" --tx-url "http://127.0.0.1:$ECHO_PORT/transaction" \
	-c "$CONC" --duration "$DURATION" >"$OUT/cal-direct.json"
kill "$HAP_PID" "$ECHO_PID"
wait "$HAP_PID" "$ECHO_PID" 2>/dev/null || true

log "warm-up (not recorded)"
lg --target "$ROUTER" -c "$CONC" --duration 2s >/dev/null

log "1. transactions through HAProxy, c=$CONC, closed loop"
lg --target "$ROUTER" -c "$CONC" --duration "$DURATION" >"$OUT/tx-router.json"

log "2. the same load direct to core-api (tokens direct from auth-api)"
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token"
	--tx-url "http://127.0.0.1:$CORE_API_PORT/transaction"
	--status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
lg "${DIRECT[@]}" -c "$CONC" --duration "$DURATION" >"$OUT/tx-direct.json"

# overhead_pairs RATE NAME: through HAProxy and direct at the same time,
# RATE/2 each (open loop), twice, into NAME-router-<i>.json and
# NAME-direct-<i>.json.
# At the same time, not one after the other: this machine's speed drifts by
# tens of percent within minutes, so phases run in turn compare two different
# machines. Run together, both halves share the CPU and Redis's fsyncs, and
# the p50 difference is the router's hop. With Poisson arrivals (since
# 2026-12-06): two evenly spaced schedules at one rate keep a fixed phase
# against each other for the whole pair, and that phase moved the difference
# by up to 0.5 ms from pair to pair (BENCHMARKS.md, "Even and Poisson
# arrivals"). No --watch-pid: both generators
# would count the same processes' CPU.
# Each runs in a subshell, where a failure sets only the subshell's FAILED,
# so the subshell exits with it.
overhead_pairs() {
	local rate=$1 name=$2 i via_router direct
	local -a OPEN
	for i in 1 2; do
		OPEN=(-c "$CONC" --rate "$((rate / 2))" --arrivals poisson --duration "$DURATION")
		(lg_unwatched --target "$ROUTER" "${OPEN[@]}" >"$OUT/$name-router-$i.json"; exit "$FAILED") &
		via_router=$!
		(lg_unwatched "${DIRECT[@]}" "${OPEN[@]}" >"$OUT/$name-direct-$i.json"; exit "$FAILED") &
		direct=$!
		wait "$via_router" || FAILED=1
		wait "$direct" || FAILED=1
	done
}

log "2b. router overhead: through HAProxy and direct at the same time, $((OVERHEAD_RATE / 2))/s each (open loop), twice"
overhead_pairs "$OVERHEAD_RATE" overhead

# The same at a light load: at 1,000/s each the two cores are busy, and each
# of the hop's wake-ups waits for a CPU; here the hop's own cost shows.
log "2c. router overhead at a light load: $((OVERHEAD_LIGHT_RATE / 2))/s each, twice"
overhead_pairs "$OVERHEAD_LIGHT_RATE" overhead-light

log "3. queue ceiling: redis-benchmark XADD on the stack's Redis"
x redis-benchmark -s "$REDIS_SOCK" -c "$CONC" -n "$XADD_REQUESTS" --csv XADD bench:xadd '*' amount 100 currency USD >"$OUT/xadd.csv"
x redis-benchmark -s "$REDIS_SOCK" -c "$CONC" -n "$XADD_REQUESTS" -P 16 --csv XADD bench:xadd '*' amount 100 currency USD >"$OUT/xadd-p16.csv"
redis-cli -s "$REDIS_SOCK" DEL bench:xadd >/dev/null
cat "$OUT/xadd.csv" "$OUT/xadd-p16.csv" >&2

log "4. tokens through HAProxy, c=$CONC"
lg --target "$ROUTER" --mode token -c "$CONC" --duration "$DURATION" >"$OUT/tokens-router.json"
lg "${DIRECT[@]}" --mode token -c "$CONC" --duration "$DURATION" >"$OUT/tokens-direct.json"

log "5. enqueue->processed at half the max rate, open loop"
HALF=$("$BENCHTOOL" rate --file "$OUT/tx-router.json" --fraction 0.5)
lg --target "$ROUTER" -c "$CONC" --rate "$HALF" --duration "$DURATION" >"$OUT/e2e-half.json"

log "7b. memory, after the load"
x "$BENCHTOOL" rss --pid "$PC_PID" --json >"$OUT/rss-after.json"
"$BENCHTOOL" rss --pid "$PC_PID" >&2

log "6b. cold start again, now that Redis holds this run's transactions (AOF replay at start)"
# How many transactions the stream ever took (entries-added), not XLEN: the
# connector trims acknowledged entries, while the AOF still holds every write
# (and the status records stay until STATUS_TTL).
redis-cli -s "$REDIS_SOCK" XINFO STREAM transactions | awk 'prev=="entries-added"{print; exit} {prev=$0}' >"$OUT/coldstart-data-xlen.txt"
du -sb "$STACK_STATE_DIR/redis" >"$OUT/coldstart-data-redis-dir-bytes.txt" || true
x "$BENCHTOOL" coldstart --runs 3 "${COLD[@]}" --json >"$OUT/coldstart-data.json"

log "summary"
x "$BENCHTOOL" summary --dir "$OUT" | tee "$OUT/summary.md"
echo "results: $OUT" >&2
exit "$FAILED"
