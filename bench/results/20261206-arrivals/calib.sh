#!/usr/bin/env bash
# Figure 2 at 1,000/s each, Poisson arrivals, on one fresh stack of
# bench/stack.sh's, in bench/run.sh's order: two pairs fresh, then
# bench/run.sh's phase 0 (its calibration: a second HAProxy in front of
# benchtool echo, 2 s + 10 s through it, 10 s direct), two pairs, then the
# closed loops of phases 1 and 2 (10 s through HAProxy, 10 s direct), two
# pairs (BENCHMARKS.md, "Even and Poisson arrivals").
# Redis's INFO persistence, memory and stats are saved around every pair.
# Reports to $OUT (default /tmp/state-<time>).
set -euo pipefail
log() { printf '\n== %s %s\n' "$(date +%T)" "$*" >&2; }
. "$(dirname "$0")/../../stack.sh"
OUT=${OUT:-/tmp/calib-$(date +%H%M%S)}
mkdir -p "$OUT"
bench_build command ./bench/benchtool
"$STACK" up --detach --wait --timeout 120s >/dev/null
ROUTER=http://127.0.0.1:$PLATFORM_PORT
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
p50() { jq '.latency_ms.tx.p50_ms' "$1"; }
info() { redis-cli -s "$REDIS_SOCK" INFO all | tr -d '\r' >"$OUT/$1-redis-info.txt"; }

# pair TAG: one pair at 1,000/s each, Poisson arrivals.
pair() {
	local tag=$1 a b r d
	local open=(-c 64 --rate 1000 --arrivals poisson --duration 10s)
	info "$tag-before"
	"${LG[@]}" --target "$ROUTER" "${open[@]}" >"$OUT/$tag-router.json" &
	a=$!
	"${LG[@]}" "${DIRECT[@]}" "${open[@]}" >"$OUT/$tag-direct.json" &
	b=$!
	wait "$a" "$b"
	info "$tag-after"
	r=$(p50 "$OUT/$tag-router.json")
	d=$(p50 "$OUT/$tag-direct.json")
	echo "$tag router_p50=$r direct_p50=$d overhead=$(jq -n "$r - $d") aof_rewrites=$(grep -E '^aof_rewrites:' "$OUT/$tag-after-redis-info.txt" | cut -d: -f2) aof_size=$(grep -E '^aof_current_size:' "$OUT/$tag-after-redis-info.txt" | cut -d: -f2) used_memory=$(grep -E '^used_memory:' "$OUT/$tag-after-redis-info.txt" | cut -d: -f2)"
}

{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo ' (dirty)')"
	echo "REDIS_APPENDFSYNC: ${REDIS_APPENDFSYNC:-(stack.env default)}"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"
"${LG[@]}" --target "$ROUTER" -c 64 --duration 2s >/dev/null # warm-up
{
	pair fresh1
	pair fresh2
	log calibration
	"$BIN/benchtool" echo --addr 127.0.0.1:15010 --socket "$WORK/echo.sock" 2>/dev/null &
	echo_pid=$!
	PLATFORM_PORT=18090 HAPROXY_STATS_PORT=18494 AUTH_API_SERVER=unix@$WORK/echo.sock CORE_API_SERVER=unix@$WORK/echo.sock \
		haproxy -db -f "$ROOT/haproxy.cfg" >/dev/null 2>&1 &
	hap_pid=$!
	for _ in $(seq 100); do
		curl -fs -o /dev/null http://127.0.0.1:18090/transaction/health && break
		sleep 0.05
	done
	cal=("$LOADGEN" --quiet --json --redis-url none --verify none -c 64)
	"${cal[@]}" --target http://127.0.0.1:18090 --duration 2s >/dev/null
	"${cal[@]}" --target http://127.0.0.1:18090 --duration 10s >"$OUT/cal-router.json"
	"${cal[@]}" --token-url http://127.0.0.1:15010/token --tx-url http://127.0.0.1:15010/transaction --duration 10s >"$OUT/cal-direct.json"
	kill "$hap_pid" "$echo_pid"
	wait "$hap_pid" "$echo_pid" 2>/dev/null || true
	pair cal1
	pair cal2
	log saturate
	"${LG[@]}" --target "$ROUTER" -c 64 --duration 10s >"$OUT/sat-router.json"
	"${LG[@]}" "${DIRECT[@]}" -c 64 --duration 10s >"$OUT/sat-direct.json"
	pair after1
	pair after2
} | tee "$OUT/pairs.txt"
echo "results: $OUT" >&2
