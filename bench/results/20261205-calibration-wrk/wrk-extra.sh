#!/usr/bin/env bash
# wrk against the calibration's trivial handler: GET /transaction/health via
# HAProxy, and the POST direct to the handler (no HAProxy), twice each.
set -euo pipefail
ROOT=${ROOT:-/work/main}
OUT=${OUT:-/tmp/wrk-extra-$(date +%H%M%S)}
mkdir -p "$OUT/bin"
cd "$ROOT"
CGO_ENABLED=0 go build -o "$OUT/bin/" ./bench/benchtool
ECHO_SOCK=$OUT/echo.sock
"$OUT/bin/benchtool" echo --addr 127.0.0.1:15010 --socket "$ECHO_SOCK" 2>/dev/null &
ECHO_PID=$!
PLATFORM_PORT=18090 HAPROXY_STATS_PORT=18494 AUTH_API_SERVER=unix@$ECHO_SOCK CORE_API_SERVER=unix@$ECHO_SOCK HAPROXY_ACCESS_LOG=errors \
	haproxy -db -f "$ROOT/haproxy.cfg" >/dev/null 2>&1 &
HAP_PID=$!
trap 'kill $HAP_PID $ECHO_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:18090/transaction/health && break; sleep 0.05; done
cat >"$OUT/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"token":"t","amount":100,"currency":"USD"}'
wrk.headers["Content-Type"] = "application/json"
LUA
for i in 1 2; do
	wrk -t2 -c64 -d10s http://127.0.0.1:18090/transaction/health >"$OUT/get-router-$i.txt"
	wrk -t2 -c64 -d10s -s "$OUT/post.lua" http://127.0.0.1:15010/transaction >"$OUT/post-direct-$i.txt"
done
for f in "$OUT"/*.txt; do echo "$(basename "$f"): $(awk '/^Requests\/sec/{print $2}' "$f") req/s, non-2xx: $(awk '/Non-2xx/{print $NF}' "$f")"; done | tee "$OUT/summary.txt"
