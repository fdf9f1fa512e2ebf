#!/usr/bin/env bash
# tokab.sh CHECKOUT LABEL: a fresh stack of CHECKOUT, 2 s of warm-up, then 10 s of logins only
# (--mode token, c=64, through HAProxy) with the CPU of every process, into /tmp/tokab-LABEL.json.
set -euo pipefail
checkout=$1 label=$2
log() { :; }
. "$checkout/bench/stack.sh"
bench_build command >/dev/null 2>&1
"$STACK" up --detach --wait --timeout 120s >/dev/null 2>&1
PC_PID=$(cat "$STACK_STATE_DIR/process-compose.pid")
LG=("$LOADGEN" --quiet --json --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --mode token)
"${LG[@]}" --duration 2s >/dev/null
"${LG[@]}" --duration 10s --watch-pid "$PC_PID" >"/tmp/tokab-$label.json"
jq -r --arg l "$label" '"\($l) tokens/s \(.tokens_per_s|floor) us/token: haproxy \(.cpu.processes_cpu_s.haproxy*1e6/.tokens|floor) auth-api \(.cpu.processes_cpu_s["auth-api"]*1e6/.tokens|floor) stack \(([.cpu.processes_cpu_s[]]|add)*1e6/.tokens|floor)"' "/tmp/tokab-$label.json"
