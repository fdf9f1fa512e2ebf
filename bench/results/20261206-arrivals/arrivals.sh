#!/usr/bin/env bash
# Figure 2 (the router's p50 overhead) with the open loop's two schedules,
# alternated on one fresh stack of bench/stack.sh's (BENCHMARKS.md, "Even
# and Poisson arrivals"). Each pair runs through HAProxy and direct at the
# same time, 10 s, as bench/run.sh's phase 2b; both halves of a pair use the
# same --arrivals. ROUNDS rounds (default 3), each at 1,000/s and at 100/s
# each, even then poisson, the order swapped every other round.
#
#   REDIS_APPENDFSYNC=everysec arrivals.sh   the same under another policy
#
# Prints one line per pair; the reports go to $OUT (default
# /tmp/arrivals-<time>).
set -euo pipefail
log() { printf '\n== %s %s\n' "$(date +%T)" "$*" >&2; }
. "$(dirname "$0")/../../stack.sh"
OUT=${OUT:-/tmp/arrivals-$(date +%H%M%S)}
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUT"
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
ROUTER=http://127.0.0.1:$PLATFORM_PORT
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
p50() { jq '.latency_ms.tx.p50_ms' "$1"; }

# pair TAG RATE ARRIVALS: one pair at RATE/s each.
pair() {
	local tag=$1 rate=$2 arrivals=$3 a b r d
	local open=(-c 64 --rate "$rate" --arrivals "$arrivals" --duration 10s)
	"${LG[@]}" --target "$ROUTER" "${open[@]}" >"$OUT/$tag-router.json" &
	a=$!
	"${LG[@]}" "${DIRECT[@]}" "${open[@]}" >"$OUT/$tag-direct.json" &
	b=$!
	wait "$a" "$b"
	r=$(p50 "$OUT/$tag-router.json")
	d=$(p50 "$OUT/$tag-direct.json")
	echo "$tag rate=$rate arrivals=$arrivals router_p50=$r direct_p50=$d overhead=$(jq -n "$r - $d")"
}

{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo ' (dirty)')"
	echo "REDIS_APPENDFSYNC: ${REDIS_APPENDFSYNC:-(stack.env default)}"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"
"${LG[@]}" --target "$ROUTER" -c 64 --duration 2s >/dev/null # warm-up
for round in $(seq 1 "$ROUNDS"); do
	order=(even poisson)
	if [ $((round % 2)) -eq 0 ]; then order=(poisson even); fi
	for rate in 1000 100; do
		for arrivals in "${order[@]}"; do
			pair "r$round-$rate-$arrivals" "$rate" "$arrivals"
		done
	done
done | tee "$OUT/pairs.txt"
echo "results: $OUT" >&2
