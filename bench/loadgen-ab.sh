#!/usr/bin/env bash
# bench/loadgen-ab.sh: the load generator's own CPU per request, two builds of
# it alternated against one stack at one rate: `loadgen` built at OLD_REV
# ("old") and the checkout's, uncommitted changes included ("new").
#
#   bench/loadgen-ab.sh OLD_REV                       # open loop at 2,000/s, 3 pairs
#   BENCH_RATE=3389 BENCH_PAIRS=6 bench/loadgen-ab.sh 5cec05e
#   BENCH_RATE=0 bench/loadgen-ab.sh 5cec05e          # closed loop (-c 64), figure 1's load
#
# Each run is figure 5's command of bench/run.sh (`loadgen --rate R -c 64
# --watch-pid <process-compose>`, every accepted transaction verified), for
# BENCH_DURATION (default 5s) at BENCH_RATE (default 2000, even arrivals
# unless BENCH_ARRIVALS=poisson), after a 2 s closed-loop warm-up. The pairs
# alternate their order (old-new, new-old, ...), so that a machine getting
# faster or slower in between favours neither. The generator's CPU is the
# report's generator_cpu_s (its own utime+stime from /proc/self/stat over the
# load phase, not the verification's), divided by the requests it sent
# ("gen µs"); "stack µs" is the stack's, and "other µs" that of every other
# process on the machine (a build beside the run shows there), both per
# request too. Compare the two within one run only:
# the generator's CPU per request grows when the machine has idle CPUs (each
# of its wake-ups wakes an idle CPU), so figures of two runs on a machine
# that changed in between say little.
#
# The stack is bench/stack.sh's (fresh state, ports 18080/18404/15001-15003
# unless BENCH_*_PORT say otherwise). Reports (JSON) and the table go to
# bench/results/ab/loadgen-<UTC time>/ (not committed; copy a run worth
# keeping to a directory of its own under bench/results/).
set -euo pipefail

. "$(dirname "$0")/stack.sh"
OLD_REV=${1:?usage: bench/loadgen-ab.sh OLD_REV, the revision whose loadgen to compare with this checkout}
OLD_SHA=$(git rev-parse --short "$OLD_REV^{commit}")
PAIRS=${BENCH_PAIRS:-3}
RATE=${BENCH_RATE:-2000}
DURATION=${BENCH_DURATION:-5s}
OUT=$ROOT/bench/results/ab/loadgen-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

bench_build command
mkdir -p "$WORK/old"
git archive "$OLD_SHA" | tar -x -C "$WORK/old"
(cd "$WORK/old" && CGO_ENABLED=0 go build -o "$WORK/loadgen-old" ./cmd/loadgen)
declare -A LG=([old]=$WORK/loadgen-old [new]=$LOADGEN)

"$STACK" up --detach --wait --timeout 120s >/dev/null
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
ARGS=(--quiet --json --redis-url "$REDIS_URL" --watch-pid "$PC_PID"
	--target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --duration "$DURATION")
LOAD="closed loop"
if [[ $RATE != 0 ]]; then
	ARGS+=(--rate "$RATE" --arrivals "${BENCH_ARRIVALS:-even}")
	LOAD="open loop at $RATE/s, ${BENCH_ARRIVALS:-even} arrivals"
fi
"$LOADGEN" --quiet --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --duration 2s >/dev/null

{
	echo "loadgen-ab: old $OLD_SHA, new $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty)'); $LOAD, $DURATION a run, $PAIRS pairs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "+ loadgen ${ARGS[*]}"
	printf '%-4s %-4s %7s %6s %8s %8s %8s %8s %8s %8s %s\n' pair gen sent late 'gen µs' 'stack µs' 'other µs' 'tx p50' 'tx p99' 'e2e p99' verdict
} | tee "$OUT/table.txt"
for i in $(seq "$PAIRS"); do
	order=(old new)
	((i % 2 == 0)) && order=(new old)
	for v in "${order[@]}"; do
		f=$OUT/$v-$i.json
		"${LG[$v]}" "${ARGS[@]}" >"$f" || true # a failed verification is in the report
		jq -r --arg pair "$i" --arg gen "$v" '
			(.cpu.processes_cpu_s | add) as $stack
			| [$pair, $gen, .tx_sent, (.late_starts // 0),
			   .cpu.generator_cpu_s / .tx_sent * 1e6, $stack / .tx_sent * 1e6,
			   (.cpu.machine_busy_cpu_s - $stack - .cpu.generator_cpu_s) / .tx_sent * 1e6,
			   .latency_ms.tx.p50_ms, .latency_ms.tx.p99_ms, .latency_ms.enqueue_to_processed.p99_ms, .verdict]
			| @tsv' "$f" |
			awk -F'\t' '{printf "%-4s %-4s %7d %6d %8.1f %8.0f %8.0f %8.2f %8.2f %8.2f %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11}'
	done
done | tee -a "$OUT/table.txt"

# The medians, and each pair's ratio new/old.
jq -rs '
	def gen: .cpu.generator_cpu_s / .tx_sent * 1e6;
	def median: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
	(map(select(.which == "old") | .r | gen) | median) as $old
	| (map(select(.which == "new") | .r | gen) | median) as $new
	| (group_by(.pair) | map((map(select(.which == "new"))[0].r | gen) / (map(select(.which == "old"))[0].r | gen))) as $ratios
	| "generator CPU per request, median: old \($old*10|round/10) µs, new \($new*10|round/10) µs; new/old by pair: \($ratios | map(.*100|round/100|tostring) | join(", ")) (median \($ratios | median | .*100|round/100))"
' < <(for f in "$OUT"/*-*.json; do
	b=$(basename "$f" .json)
	jq -c --arg which "${b%-*}" --arg pair "${b##*-}" '{which: $which, pair: $pair, r: .}' "$f"
done) | tee -a "$OUT/table.txt"
echo "saved: $OUT" >&2
