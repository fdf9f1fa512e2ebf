#!/usr/bin/env bash
# ab-cold.sh: cold start A/B of two variants, alternated, how the pair*.json of the
# 20261204-coldstart-* result dirs were made.
#
#   ORDER="a b" PAIRS=5 OUTD=out ab-cold.sh   # A first in each pair
#   ORDER="b a" PAIRS=3 OUTD=out ab-cold.sh   # B first
#
# A variant v reads the stack's files (process-compose.yaml, haproxy.cfg, haproxy-errors/,
# stack.env) from SHARE_v if set, else /tmp/cs/v, through STACK_SHARE_DIR; "co" reads the
# checkout's own files. It runs the binaries in BIN_v if set, else the ones bench/stack.sh
# builds once for all variants. Here (20261204-coldstart-tree) /tmp/cs/a held the chain
# (redis <- psp-connector <- core-api <- auth-api <- haproxy, at 46b683a) and /tmp/cs/b the tree
# (auth-api with no dependency, haproxy waiting for auth-api and core-api).
# Each variant: `benchtool coldstart --runs 5` on an empty state dir, both routes 200.
set -euo pipefail
. "$(git rev-parse --show-toplevel)/bench/stack.sh"
bench_build command ./bench/benchtool
ROUTER=http://127.0.0.1:$PLATFORM_PORT
OUTD=${OUTD:-out}; mkdir -p "$OUTD"
BUILT=$BIN ORIG_PATH=$PATH
for i in $(seq 1 "${PAIRS:-3}"); do
	for v in ${ORDER:-a b}; do
		share=SHARE_$v bins=BIN_$v
		if [ "$v" = co ]; then unset STACK_SHARE_DIR; else export STACK_SHARE_DIR=${!share:-/tmp/cs/$v}; fi
		B=${!bins:-$BUILT}
		export PATH=$B:$ORIG_PATH
		rm -rf "$STACK_STATE_DIR"
		"$BUILT/benchtool" coldstart --runs 5 --up "'$B/stack' up --detach" --down "'$B/stack' down" \
			--url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json >"$OUTD/$v-$i.json"
		printf '%s-%s load=%s %s\n' "$v" "$i" "$(cut -d' ' -f1 /proc/loadavg)" "$(cat "$OUTD/$v-$i.json")"
	done
done
