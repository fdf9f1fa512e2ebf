#!/usr/bin/env bash
# Figure 5's load (open loop at 3,000 tx/s, about half of the closed loop's
# rate on this machine, c=64, 10 s, through HAProxy) with even and with
# Poisson arrivals: bench/ab.sh on a fresh stack each, PAIRS pairs (default
# 3), the order swapped every other pair. Copies the reports here, into
# fig5-ab/ (BENCHMARKS.md, "Even and Poisson arrivals").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
mkdir -p "$here/fig5-ab"
for i in $(seq 1 "${PAIRS:-3}"); do
	order=(even poisson)
	if [ $((i % 2)) -eq 0 ]; then order=(poisson even); fi
	for a in "${order[@]}"; do
		out=$(BENCH_RATE=3000 BENCH_ARRIVALS=$a bash "$root/bench/ab.sh" "fig5-$a-$i" 2>&1 >/dev/null | sed -n 's/^saved: //p')
		cp "$out" "$here/fig5-ab/"
		grep -E '^ab:|enqueue_to_processed|^           tx ' "$out"
	done
done
