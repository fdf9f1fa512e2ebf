#!/usr/bin/env bash
# CHARGE_CONCURRENCY 24 (the default) against 29 (the most that leaves in one
# pipe write with the longest lines), alternated, the order swapped every pair.
set -u
cd /work/main
for i in 1 2 3 4 5 6; do
	if [ $((i % 2)) -eq 1 ]; then order="24 29"; else order="29 24"; fi
	for n in $order; do
		bash bench/ab.sh "cc$n" "CHARGE_CONCURRENCY=$n" >/dev/null 2>&1 || echo "ab failed: $n $i"
		sleep 3
	done
done
echo done
