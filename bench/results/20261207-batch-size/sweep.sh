#!/usr/bin/env bash
# psp-connector's BATCH_SIZE 64 (the default until this sweep) against 96 and
# 144, rounds of 24 (CHARGE_CONCURRENCY's default): bench/ab.sh in rotation,
# the order turned at every triple, each run on a fresh stack. Reports are
# copied here. The second sweep gave the orders as arguments:
#   bash sweep.sh "144 240" "240 144" "144 240" "240 144"
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=bench/results/20261207-batch-size
# Each argument is one order of sizes; without any, the first sweep's six.
orders=("$@")
if [[ ${#orders[@]} -eq 0 ]]; then
	orders=("64 96 144" "96 144 64" "144 64 96" "64 144 96" "96 64 144" "144 96 64")
fi
for order in "${orders[@]}"; do
	for bs in $order; do
		out=$(bash bench/ab.sh "bs$bs" "BATCH_SIZE=$bs" 2>&1 >/dev/null | sed -n 's/^saved: //p')
		cp "$out" "$here/"
	done
done
