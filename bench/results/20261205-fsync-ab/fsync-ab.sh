#!/usr/bin/env bash
# README, "What `always` costs": bench/ab.sh under REDIS_APPENDFSYNC=always and
# everysec, three alternated pairs (the order swapped in the second), each on a
# fresh stack, closed loop c=64 through HAProxy for 10 s. The reports are
# bench/ab.sh's, copied here from bench/results/ab/.
set -u
cd "$(dirname "$0")/../../.." || exit
for i in 1 2 3; do
	if [ $((i % 2)) = 1 ]; then order="always everysec"; else order="everysec always"; fi
	for p in $order; do
		bash bench/ab.sh "fsync-$p" REDIS_APPENDFSYNC="$p" 2>&1 | grep -E "^ab:|accepted|drain|processed"
	done
done
