#!/usr/bin/env bash
# ab-bins.sh: cold start A/B of two binary sets, alternated.
#   ORDER="bin static" PAIRS=4 OUTD=out ab-bins.sh
# /tmp/cs/bin: stack, the services and process-compose built with cgo (go's default with a C
# compiler: dynamically linked); /tmp/cs/static: the same sources with CGO_ENABLED=0 (static).
# Both read the same files (STACK_SHARE_DIR=/tmp/cs/c, haproxy.cfg of ccdb70f).
set -euo pipefail
export STACK_STATE_DIR=/tmp/cs/state PLATFORM_PORT=18080 HAPROXY_STATS_PORT=18404 AUTH_API_PORT=15001 CORE_API_PORT=15002 PSP_CONNECTOR_PORT=15003 STACK_SHARE_DIR=/tmp/cs/c AUTH_RATE_LIMIT=1000000000
ROUTER=http://127.0.0.1:$PLATFORM_PORT
OUTD=${OUTD:-out}; mkdir -p "$OUTD"
ORIG=$PATH
for i in $(seq 1 "${PAIRS:-3}"); do
	for v in ${ORDER:-bin static}; do
		BIN=/tmp/cs/$v
		export PATH=$BIN:$ORIG
		rm -rf "$STACK_STATE_DIR"
		"$BIN/benchtool" coldstart --runs 5 --up "'$BIN/stack' up --detach" --down "'$BIN/stack' down" \
			--url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json >"$OUTD/$v-$i.json"
		printf '%s-%s load=%s %s\n' "$v" "$i" "$(cut -d' ' -f1 /proc/loadavg)" "$(cat "$OUTD/$v-$i.json")"
	done
done
