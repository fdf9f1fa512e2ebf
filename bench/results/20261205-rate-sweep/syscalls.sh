#!/usr/bin/env bash
# Syscalls, context switches and CPU per transaction of each process, at an
# open-loop RATE (default 1000/s), from `perf stat` attached for 4 s in the
# middle of a 10 s load on a fresh bench stack (bench/stack.sh); then the same
# load again with `strace -c -f` on Redis, core-api, psp-connector and
# process-compose (strace slows them: its counts say which calls, not their
# cost). Needs perf and strace; run from the checkout:
#   bash bench/results/20261205-rate-sweep/syscalls.sh 1000
set -euo pipefail
RATE=${1:-1000}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
. bench/stack.sh
bench_build command >/dev/null
out=$here/syscalls-$RATE
mkdir -p "$out"
procs=(redis-server core-api psp-connector haproxy process-compose loadgen)
load() {
	"$LOADGEN" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --rate "$RATE" --duration 10s --quiet >"$out/$1"
}
"$STACK" up --detach --wait --timeout 120s >/dev/null 2>&1
load loadgen-perf.txt &
sleep 3
for p in "${procs[@]}"; do
	perf stat -e raw_syscalls:sys_enter,context-switches,cpu-clock -p "$(pgrep -x "$p" | head -1)" -x, -o "$out/perf-stat-$p.txt" -- sleep 4 &
done
wait
for p in "${procs[@]}"; do
	awk -F, -v p="$p" -v n=$((4 * RATE)) '/sys_enter/{s=$1} /context-switches/{c=$1} /cpu-clock/{t=$1}
		END{printf "%-16s syscalls/tx %5.1f  context switches/tx %5.1f  cpu µs/tx %6.1f\n", p, s/n, c/n, t*1000/n}' "$out/perf-stat-$p.txt"
done | tee "$out/summary.txt"
load loadgen-strace.txt &
sleep 3
for p in redis-server core-api psp-connector process-compose; do
	timeout -s INT 4 strace -c -f -p "$(pgrep -x "$p" | head -1)" -o "$out/strace-$p.txt" 2>/dev/null &
done
wait
for p in redis-server core-api psp-connector process-compose; do
	echo "== $p (strace -c, 4 s at $RATE/s)"
	sed -n 3,8p "$out/strace-$p.txt"
done | tee -a "$out/summary.txt"
