#!/usr/bin/env bash
# Cold start A/B: the launcher before this session's changes (e01069b: no
# PROC_COMP_CONFIG, so process-compose searches for its config home and warns
# twice) against the launcher at HEAD, on the same services, process-compose
# and files, alternated pair by pair (the order swapped in every other pair).
# Run from the checkout: bash bench/results/20261205-coldstart-pcconfig/ab.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../stack.sh"
OUT=$ROOT/bench/results/20261205-coldstart-pcconfig
PAIRS=${PAIRS:-6}
bench_build env ./bench/benchtool
mkdir -p "$WORK/old" "$WORK/new"
cp "$BIN/stack" "$WORK/new/stack"
git worktree add -q --detach "$WORK/src-old" e01069b
(cd "$WORK/src-old" && CGO_ENABLED=0 go build -o "$WORK/old/stack" ./cmd/stack)
git worktree remove --force "$WORK/src-old"
ROUTER=http://127.0.0.1:$PLATFORM_PORT
cold() { # which
	"$BIN/benchtool" coldstart --runs 5 --up "'$WORK/$1/stack' up --detach" --down "'$WORK/$1/stack' down" \
		--url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json >"$OUT/$2-$1.json"
}
for i in $(seq 1 "$PAIRS"); do
	if (( i % 2 )); then cold old "pair$i"; cold new "pair$i"; else cold new "pair$i"; cold old "pair$i"; fi
	echo "pair $i: $(uptime)" >&2
done
