#!/usr/bin/env bash
# ab-cold.sh: cold start A/B of two share dirs, alternated, how pair*.json were made.
#
#   ORDER="a b" PAIRS=5 OUTD=out ab-cold.sh   # A first in each pair
#   ORDER="b a" PAIRS=3 OUTD=out ab-cold.sh   # B first
#
# /tmp/cs/a and /tmp/cs/b each hold a copy of process-compose.yaml, haproxy.cfg,
# haproxy-errors/ and stack.env: a = the chain (redis <- psp-connector <- core-api
# <- auth-api <- haproxy, at 46b683a), b = the tree (auth-api with no dependency,
# haproxy waiting for auth-api and core-api). The launcher reads them through
# STACK_SHARE_DIR; the binaries are the same for both, built once by bench/stack.sh.
# Each variant: `benchtool coldstart --runs 5` on an empty state dir, both routes 200.
set -euo pipefail
. "$(git rev-parse --show-toplevel)/bench/stack.sh"
bench_build command ./bench/benchtool
ROUTER=http://127.0.0.1:$PLATFORM_PORT
OUTD=${OUTD:-out}; mkdir -p "$OUTD"
for i in $(seq 1 "${PAIRS:-3}"); do
	for v in ${ORDER:-a b}; do
		# "co": the checkout's own files, found without STACK_SHARE_DIR (run11-after-*).
		if [ "$v" = co ]; then unset STACK_SHARE_DIR; else export STACK_SHARE_DIR=/tmp/cs/$v; fi
		rm -rf "$STACK_STATE_DIR"
		"$BIN/benchtool" coldstart --runs 5 --up "'$BIN/stack' up --detach" --down "'$BIN/stack' down" \
			--url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json >"$OUTD/$v-$i.json"
		printf '%s-%s load=%s %s\n' "$v" "$i" "$(cut -d' ' -f1 /proc/loadavg)" "$(cat "$OUTD/$v-$i.json")"
	done
done
