#!/usr/bin/env bash
# A/B: the router's p50 overhead (figure 2: HAProxy and direct at the same
# time, 1,000/s each, open loop) with HAProxy's default threads (2 here) vs
# `nbthread 1`, on a fresh bench stack (bench/stack.sh) per variant. The
# nbthread 1 variant runs the launcher with STACK_SHARE_DIR at a copy of the
# stack's files whose haproxy.cfg has `nbthread 1` in its global section.
#
#   bench/results/20261204-nbthread/nbthread-ab.sh
#   PAIRS="4 5" ORDER="nbt1 default" bench/results/20261204-nbthread/nbthread-ab.sh
set -euo pipefail
OUT=${OUT:-$(mktemp -d)}
. "$(cd "$(dirname "$0")" && pwd)/../../stack.sh"
SHARE1=$WORK/share-nbthread1
mkdir -p "$SHARE1"
cp -r process-compose.yaml haproxy.cfg haproxy-errors stack.env "$SHARE1/"
sed -i 's/^global$/global\n    nbthread 1/' "$SHARE1/haproxy.cfg"
bench_build command
DIRECT=(--token-url "http://127.0.0.1:$AUTH_API_PORT/token" --tx-url "http://127.0.0.1:$CORE_API_PORT/transaction"
	--status-url "http://127.0.0.1:$CORE_API_PORT/transactions/")
OPEN=(-c 64 --rate 1000 --duration 10s)
for pair in ${PAIRS:-1 2 3}; do
	for v in ${ORDER:-default nbt1}; do
		"$STACK" down >/dev/null 2>&1 || true
		rm -rf "$STACK_STATE_DIR"
		if [ "$v" = nbt1 ]; then export STACK_SHARE_DIR=$SHARE1; else unset STACK_SHARE_DIR; fi
		"$STACK" up --detach --wait --timeout 120s >/dev/null
		"$LOADGEN" --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --quiet --duration 2s >/dev/null # warm-up
		"$LOADGEN" --quiet --json --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" "${OPEN[@]}" >"$OUT/$pair-$v-router.json" &
		a=$!
		"$LOADGEN" --quiet --json --redis-url "$REDIS_URL" "${DIRECT[@]}" "${OPEN[@]}" >"$OUT/$pair-$v-direct.json" &
		b=$!
		wait $a $b || true
		python3 - "$OUT/$pair-$v-router.json" "$OUT/$pair-$v-direct.json" "pair $pair $v" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))['latency_ms']['tx']
d = json.load(open(sys.argv[2]))['latency_ms']['tx']
print(sys.argv[3], 'p50 router %.3f direct %.3f overhead %.3f | p90 %.3f vs %.3f' % (
    r['p50_ms'], d['p50_ms'], r['p50_ms'] - d['p50_ms'], r['p90_ms'], d['p90_ms']), flush=True)
P
	done
done
