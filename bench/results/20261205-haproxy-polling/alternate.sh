#!/usr/bin/env bash
# The three variants of polling.sh, alternated in three rounds, each variant in
# its own checkout of the same commit (git worktree add --detach), with
# haproxy.cfg edited as nbthread-1.patch and busy-polling.patch say:
#
#   BASE=/work/main NT1=/work/exp-nt1 BP=/work/exp-bp alternate.sh >summary.txt
set -u
S=$(cd "$(dirname "$0")" && pwd)/polling.sh
declare -A dir=([base]=${BASE:?} [nt1]=${NT1:?} [bp]=${BP:?})
for order in "nt1 bp base" "bp base nt1" "base nt1 bp"; do
	for v in $order; do
		OUT=/tmp/polling/$v-$(date +%H%M%S) CHECKOUT=${dir[$v]} bash "$S" "$v" 2>/dev/null | grep -v '^stack:'
	done
done
