#!/usr/bin/env bash
# cold start A/B of core-api's readiness probe: a = --status 200,503 (4fc8465), b = 200 only (before)
set -euo pipefail
export PATH=/tmp/csab/bin:$PATH
export PLATFORM_PORT=18080 HAPROXY_STATS_PORT=18404 AUTH_API_PORT=15001 CORE_API_PORT=15002 PSP_CONNECTOR_PORT=15003
export AUTH_RATE_LIMIT=1000000000 HAPROXY_ACCESS_LOG=errors
cd /tmp
for v in "$@"; do
  export STACK_SHARE_DIR=/tmp/csab/share-$v STACK_STATE_DIR=/tmp/csab/state-$v
  rm -rf "$STACK_STATE_DIR"
  printf '%s ' "$v"
  /tmp/csab/bin/benchtool coldstart --runs 5 --up "/tmp/csab/bin/stack up --detach" --down "/tmp/csab/bin/stack down" --url http://127.0.0.1:18080/auth/health --url http://127.0.0.1:18080/transaction/health --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(d[\"median_ready_ms\"], [round(r[\"ready_ms\"]) for r in d[\"runs\"]])"
  /tmp/csab/bin/stack down >/dev/null 2>&1 || true
done
