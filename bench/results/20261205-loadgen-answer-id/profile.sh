#!/usr/bin/env bash
# perf record -g of loadgen for 6 s of bench/run.sh's calibration (HAProxy
# with haproxy.cfg in front of benchtool echo, c=64); reports on stdout, the
# data in $OUT.
set -euo pipefail
OUT=${OUT:-/tmp/loadgen-profile-$(date +%H%M%S)}
mkdir -p "$OUT/bin"
cd "$(dirname "$0")/../../.."
CGO_ENABLED=0 go build -o "$OUT"/bin/ ./bench/benchtool ./cmd/loadgen
ECHO_SOCK="$OUT"/echo.sock
"$OUT"/bin/benchtool echo --addr 127.0.0.1:15010 --socket "$ECHO_SOCK" 2>/dev/null & ECHO_PID=$!
PLATFORM_PORT=18090 HAPROXY_STATS_PORT=18494 AUTH_API_SERVER=unix@$ECHO_SOCK CORE_API_SERVER=unix@$ECHO_SOCK HAPROXY_ACCESS_LOG=errors haproxy -db -f haproxy.cfg >/dev/null 2>&1 & HAP_PID=$!
trap 'kill $HAP_PID $ECHO_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:18090/transaction/health && break; sleep 0.05; done
"$OUT"/bin/loadgen --quiet --json --redis-url none --verify none --target http://127.0.0.1:18090 -c 64 --duration 12s > "$OUT"/lg.json & LG=$!
sleep 3
perf record -g -p "$LG" -o "$OUT"/perf.data -- sleep 6 2>/dev/null
wait "$LG"
perf report -i "$OUT"/perf.data --no-children --sort dso -g none 2>/dev/null | grep '%' | head -5
perf report -i "$OUT"/perf.data --no-children --sort sym -g none 2>/dev/null | grep '%' | head -40
echo ==== children
perf report -i "$OUT"/perf.data --children --sort sym -g none 2>/dev/null | grep '%' | grep -v '\[k\]' | head -40
