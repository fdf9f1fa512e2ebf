#!/usr/bin/env bash
# Cold start A/B of the launcher's acceptance fixes: "before" = 401f049, "after" = the
# commit under test. Each version's launcher, services and process-compose in
# /tmp/csab2/bin-<v> (go build from a worktree of each commit), the same config files
# (STACK_SHARE_DIR = this checkout), a fresh state dir per version; 5 timed starts each,
# versions alternated as given on the command line (e.g. before after before after).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
export PLATFORM_PORT=18080 HAPROXY_STATS_PORT=18404 AUTH_API_PORT=15001 CORE_API_PORT=15002 PSP_CONNECTOR_PORT=15003
export AUTH_RATE_LIMIT=1000000000 HAPROXY_ACCESS_LOG=errors STACK_SHARE_DIR=$root
cd /tmp
for v in "$@"; do
  export PATH=/tmp/csab2/bin-$v:/usr/sbin:/usr/bin:/sbin:/bin STACK_STATE_DIR=/tmp/csab2/state-$v
  rm -rf "$STACK_STATE_DIR"
  printf '%s ' "$v"
  /tmp/csab2/benchtool coldstart --runs 5 --up "/tmp/csab2/bin-$v/stack up --detach" --down "/tmp/csab2/bin-$v/stack down" \
    --url http://127.0.0.1:18080/auth/health --url http://127.0.0.1:18080/transaction/health --json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["median_ready_ms"], [round(r["ready_ms"]) for r in d["runs"]])'
  "/tmp/csab2/bin-$v/stack" down >/dev/null 2>&1 || true
done
