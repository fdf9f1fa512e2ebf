#!/usr/bin/env bash
# Enqueue->processed latency against the open-loop rate, under two AOF fsync
# policies: bench/ab.sh (fresh stack, 10 s, c=64) at each rate, the two
# policies alternated and their order swapped at every other rate, so that the
# machine's drift falls on both. Reports are copied here under bench/ab.sh's
# names (<UTC time>-sweep-<rate>-<policy>.txt); run from the checkout:
#   bash bench/results/20261205-rate-sweep/sweep.sh
#   SWEEP_RATES="1000 2000" SWEEP_POLICIES="always no" bash bench/results/20261205-rate-sweep/sweep.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
n=0
for rate in ${SWEEP_RATES:-500 1000 2000 3000 4000}; do
	read -r first second <<<"${SWEEP_POLICIES:-always everysec}"
	if ((n++ % 2)); then order="$second $first"; else order="$first $second"; fi
	for policy in $order; do
		BENCH_RATE=$rate bash bench/ab.sh "sweep-$rate-$policy" REDIS_APPENDFSYNC="$policy" >/dev/null 2>&1
		report=$(ls -t bench/results/ab/*-sweep-"$rate"-"$policy".txt | head -1)
		cp "$report" "$here/"
		grep -E 'enqueue_to|busy' "$report" | sed "s/^/$rate $policy: /" | cut -c1-200
	done
done
