#!/usr/bin/env bash
# HAProxy's threads and polling against figure 2 at a light load and figure 1,
# on a fresh stack of bench/stack.sh's (BENCHMARKS.md, "HAProxy's busy-polling").
# CHECKOUT names the checkout whose haproxy.cfg is the variant to measure:
#
#   CHECKOUT=/path/to/checkout polling.sh LABEL
#
# then, on the same stack: two pairs at 100/s each and one at 250/s each,
# through HAProxy and direct at the same time for 10 s (as bench/run.sh's
# phase 2c), and 10 s closed loop through HAProxy at c=64 (phase 1) with the
# CPU of each process. The variants measured were the committed haproxy.cfg
# (one thread per CPU under the benchmark's HAPROXY_ACCESS_LOG=errors),
# "nbthread 1", and "nbthread 1" with "busy-polling".
# Reports go to $OUT (default /tmp/polling-LABEL-<time>).
set -euo pipefail
label=${1:?usage: polling.sh LABEL}
# shellcheck source=/dev/null # the checkout named by CHECKOUT
. "${CHECKOUT:?set CHECKOUT to the checkout to measure}/bench/stack.sh"
OUT=${OUT:-/tmp/polling-$label-$(date +%H%M%S)}
mkdir -p "$OUT"
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
ROUTER=http://127.0.0.1:$PLATFORM_PORT
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction" --status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL")
p50() { jq -r '.latency_ms.tx.p50_ms' "$1"; }

pair() {
	local tag=$1 rate=$2 a b
	local open=(-c 64 --rate "$rate" --duration 10s --watch-pid "$PC_PID")
	"${LG[@]}" --target "$ROUTER" "${open[@]}" >"$OUT/$tag-router.json" &
	a=$!
	"${LG[@]}" "${DIRECT[@]}" "${open[@]}" >"$OUT/$tag-direct.json" &
	b=$!
	wait "$a" "$b"
	local r d
	r=$(p50 "$OUT/$tag-router.json") d=$(p50 "$OUT/$tag-direct.json")
	echo "$label $tag router p50 $r direct p50 $d overhead $(echo "$r - $d" | bc -l | sed 's/^\./0./;s/^-\./-0./') ms; machine busy $(jq -r '.cpu.machine_busy_cpu_s' "$OUT/$tag-router.json") of $(jq -r '.cpu.machine_available_cpu_s' "$OUT/$tag-router.json") s, haproxy $(jq -r '.cpu.processes_cpu_s.haproxy' "$OUT/$tag-router.json") s"
}

"${LG[@]}" --target "$ROUTER" -c 64 --duration 2s >/dev/null # warm-up
echo "$label: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- haproxy.cfg || echo ' + haproxy.cfg edit'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
pair light100-1 100
pair light100-2 100
pair light250 250
"${LG[@]}" --target "$ROUTER" -c 64 --duration 10s --watch-pid "$PC_PID" >"$OUT/closed.json"
jq -r --arg l "$label" '"\($l) closed loop: \(.tx_accepted_per_s|floor) tx/s, verdict \(.verdict); CPU s: \(.cpu.processes_cpu_s|to_entries|map("\(.key) \(.value)")|join(", ")), generator \(.cpu.generator_cpu_s), machine \(.cpu.machine_busy_cpu_s) of \(.cpu.machine_available_cpu_s)"' "$OUT/closed.json"
echo "results: $OUT" >&2
