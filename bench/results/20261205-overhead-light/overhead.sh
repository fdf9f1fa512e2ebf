#!/usr/bin/env bash
# Figure 2 (the router's p50 overhead) in three experiments, each on a fresh
# stack of bench/stack.sh's, each pair through HAProxy and direct at the same
# time, 10 s, as bench/run.sh's phase 2b (BENCHMARKS.md, "Run 34 and the
# router's overhead at a light load"):
#
#   overhead.sh state   1,000/s each: fresh, right after 10 s closed loop through
#                       HAProxy and 10 s direct, and after 30 s idle
#   overhead.sh rates   100, 250, 500 and 1,000/s each, two rounds
#   overhead.sh sched   100/s each, with `perf sched record` for 5 s of it
#
# The reports go to $OUT (default /tmp/overhead-<mode>-<time>).
set -euo pipefail
mode=${1:?usage: overhead.sh state|rates|sched}
log() { printf '\n== %s %s\n' "$(date +%T)" "$*" >&2; }
. "$(dirname "$0")/../../stack.sh"
OUT=${OUT:-/tmp/overhead-$mode-$(date +%H%M%S)}
mkdir -p "$OUT"
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
ROUTER=http://127.0.0.1:$PLATFORM_PORT
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
p50s() { jq -c '.latency_ms.tx|[.p50_ms,.p99_ms]' "$1"; }

# pair TAG RATE [COMMAND...]: one pair at RATE/s each, COMMAND run beside it
# 2 s after the start.
pair() {
	local tag=$1 rate=$2 a b
	shift 2
	local open=(-c 64 --rate "$rate" --duration 10s)
	"${LG[@]}" --target "$ROUTER" "${open[@]}" >"$OUT/$tag-router.json" &
	a=$!
	"${LG[@]}" "${DIRECT[@]}" "${open[@]}" >"$OUT/$tag-direct.json" &
	b=$!
	if [ $# -gt 0 ]; then
		sleep 2
		"$@"
	fi
	wait "$a" "$b"
	echo "$tag router $(p50s "$OUT/$tag-router.json") direct $(p50s "$OUT/$tag-direct.json") $(redis-cli -s "$REDIS_SOCK" INFO persistence | tr -d '\r' | grep -E '^aof_rewrites:')"
}

"${LG[@]}" --target "$ROUTER" -c 64 --duration 2s >/dev/null # warm-up
case $mode in
state)
	log fresh
	pair fresh1 1000
	pair fresh2 1000
	log saturate
	"${LG[@]}" --target "$ROUTER" -c 64 --duration 10s >"$OUT/sat-router.json"
	"${LG[@]}" "${DIRECT[@]}" -c 64 --duration 10s >"$OUT/sat-direct.json"
	log after
	pair after1 1000
	pair after2 1000
	log idle 30s
	sleep 30
	pair idle1 1000
	;;
rates)
	for round in 1 2; do
		for r in 100 250 500 1000; do
			pair "r$r-$round" "$r"
		done
	done
	;;
sched)
	pair sched 100 perf sched record -o "$OUT/perf.data" -- sleep 5
	perf sched latency -i "$OUT/perf.data" >"$OUT/latency-runtime.txt" 2>/dev/null
	;;
*)
	echo "overhead.sh: mode $mode: want state, rates or sched" >&2
	exit 2
	;;
esac
echo "results: $OUT" >&2
