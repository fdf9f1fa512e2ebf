#!/usr/bin/env bash
# Cold start A/B: the readiness probes' shell, bash (process-compose's default) against dash,
# alternated; results in OUTDIR (default: the current directory).
set -euo pipefail
out=${OUTDIR:-.}
. "$(git rev-parse --show-toplevel)/bench/stack.sh"
bench_build env ./bench/benchtool >/dev/null
ROUTER=http://127.0.0.1:$PLATFORM_PORT
for i in $(seq 1 "${PAIRS:-4}"); do
	for v in bash dash; do
		f=$out/cold-$v-$i.json
		COMPOSE_SHELL=$v "$BIN/benchtool" coldstart --runs 5 --up "'$BIN/stack' up --detach" --down "'$BIN/stack' down" \
			--url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json >"$f"
		echo "$v $i $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median_ready_ms"])' "$f")"
	done
done
