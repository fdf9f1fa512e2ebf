#!/usr/bin/env bash
# Figure 2 (the router's p50 overhead) with the load generator's two open-loop
# schedules (BENCHMARKS.md, "Even and Poisson arrivals"). Each mode runs on one
# fresh stack of bench/stack.sh's; each pair runs through HAProxy and direct at
# the same time, 10 s, as bench/run.sh's phase 2b, both halves on the same
# --arrivals.
#
#   arrivals.sh alternate   ROUNDS rounds (default 3), each a pair at 1,000/s
#                           and one at 100/s each, even then poisson, the order
#                           swapped every other round
#   arrivals.sh state       Poisson pairs at 1,000/s each: two fresh, two after
#                           the closed loops of bench/run.sh's phases 1 and 2
#                           (10 s through HAProxy, 10 s direct), one after 30 s
#                           idle
#   arrivals.sh calib       Poisson pairs at 1,000/s each in bench/run.sh's
#                           order: two fresh, two after its phase 0 (the
#                           calibration: a second HAProxy in front of benchtool
#                           echo, 2 s + 10 s through it, 10 s direct), two after
#                           the closed loops of phases 1 and 2
#
#   REDIS_APPENDFSYNC=everysec arrivals.sh alternate   under another policy
#
# Prints one line per pair; Redis's INFO before and after each pair (state and
# calib; taken in every mode since this script replaced three), the loadgen
# reports and machine.txt go to $OUT (default /tmp/arrivals-<mode>-<time>).
set -euo pipefail
mode=${1:?usage: arrivals.sh alternate|state|calib}
log() { printf '\n== %s %s\n' "$(date +%T)" "$*" >&2; }
. "$(dirname "$0")/../../stack.sh"
OUT=${OUT:-/tmp/arrivals-$mode-$(date +%H%M%S)}
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUT"
bench_build command ./bench/benchtool
"$STACK" up --detach --wait --timeout 120s >/dev/null
ROUTER=http://127.0.0.1:$PLATFORM_PORT
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
p50() { jq '.latency_ms.tx.p50_ms' "$1"; }
info() { redis-cli -s "$REDIS_SOCK" INFO all | tr -d '\r' >"$OUT/$1-redis-info.txt"; }
field() { grep -E "^$1:" "$2" | cut -d: -f2; }

# pair TAG RATE ARRIVALS: one pair at RATE/s each.
pair() {
	local tag=$1 rate=$2 arrivals=$3 a b r d
	local open=(-c 64 --rate "$rate" --arrivals "$arrivals" --duration 10s)
	info "$tag-before"
	"${LG[@]}" --target "$ROUTER" "${open[@]}" >"$OUT/$tag-router.json" &
	a=$!
	"${LG[@]}" "${DIRECT[@]}" "${open[@]}" >"$OUT/$tag-direct.json" &
	b=$!
	wait "$a" "$b"
	info "$tag-after"
	r=$(p50 "$OUT/$tag-router.json")
	d=$(p50 "$OUT/$tag-direct.json")
	echo "$tag rate=$rate arrivals=$arrivals router_p50=$r direct_p50=$d overhead=$(jq -n "$r - $d")" \
		"aof_rewrites=$(field aof_rewrites "$OUT/$tag-before-redis-info.txt")-$(field aof_rewrites "$OUT/$tag-after-redis-info.txt")" \
		"aof_size=$(field aof_current_size "$OUT/$tag-after-redis-info.txt") used_memory=$(field used_memory "$OUT/$tag-after-redis-info.txt")"
}

saturate() {
	log saturate
	"${LG[@]}" --target "$ROUTER" -c 64 --duration 10s >"$OUT/sat-router.json"
	"${LG[@]}" "${DIRECT[@]}" -c 64 --duration 10s >"$OUT/sat-direct.json"
}

# calibrate: bench/run.sh's phase 0, the same commands and ports.
calibrate() {
	log calibration
	local echo_pid hap_pid
	"$BIN/benchtool" echo --addr 127.0.0.1:15010 --socket "$WORK/echo.sock" 2>/dev/null &
	echo_pid=$!
	PLATFORM_PORT=18090 HAPROXY_STATS_PORT=18494 AUTH_API_SERVER=unix@$WORK/echo.sock CORE_API_SERVER=unix@$WORK/echo.sock \
		haproxy -db -f "$ROOT/haproxy.cfg" >/dev/null 2>&1 &
	hap_pid=$!
	for _ in $(seq 100); do
		curl -fs -o /dev/null http://127.0.0.1:18090/transaction/health && break
		sleep 0.05
	done
	local cal=("$LOADGEN" --quiet --json --redis-url none --verify none -c 64)
	"${cal[@]}" --target http://127.0.0.1:18090 --duration 2s >/dev/null
	"${cal[@]}" --target http://127.0.0.1:18090 --duration 10s >"$OUT/cal-router.json"
	"${cal[@]}" --token-url http://127.0.0.1:15010/token --tx-url http://127.0.0.1:15010/transaction --duration 10s >"$OUT/cal-direct.json"
	kill "$hap_pid" "$echo_pid"
	wait "$hap_pid" "$echo_pid" 2>/dev/null || true
}

{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo ' (dirty)')"
	echo "mode: $mode"
	echo "REDIS_APPENDFSYNC: ${REDIS_APPENDFSYNC:-(stack.env default)}"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"
"${LG[@]}" --target "$ROUTER" -c 64 --duration 2s >/dev/null # warm-up
case $mode in
alternate)
	for round in $(seq 1 "$ROUNDS"); do
		order=(even poisson)
		if [ $((round % 2)) -eq 0 ]; then order=(poisson even); fi
		for rate in 1000 100; do
			for arrivals in "${order[@]}"; do
				pair "r$round-$rate-$arrivals" "$rate" "$arrivals"
			done
		done
	done
	;;
state)
	pair fresh1 1000 poisson
	pair fresh2 1000 poisson
	saturate
	pair after1 1000 poisson
	pair after2 1000 poisson
	log idle 30s
	sleep 30
	pair idle1 1000 poisson
	;;
calib)
	pair fresh1 1000 poisson
	pair fresh2 1000 poisson
	calibrate
	pair cal1 1000 poisson
	pair cal2 1000 poisson
	saturate
	pair after1 1000 poisson
	pair after2 1000 poisson
	;;
*)
	echo "arrivals.sh: mode $mode: want alternate, state or calib" >&2
	exit 2
	;;
esac | tee "$OUT/pairs.txt"
echo "results: $OUT" >&2
