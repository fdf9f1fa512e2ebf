#!/usr/bin/env bash
# The calibration of bench/run.sh (HAProxy with haproxy.cfg in front of
# benchtool echo, c=64, 10 s) loaded by wrk (BENCHMARKS.md, "The calibration
# with wrk"):
#
#   wrk-cal.sh pairs   wrk and loadgen in turn, 3 alternated pairs, with the
#                      CPU of each generator, HAProxy and the handler: how
#                      much of the calibration's rate is the generator's
#   wrk-cal.sh extra   wrk alone, twice each: GET /transaction/health through
#                      HAProxy, and the POST straight to the handler
#
# The outputs go to $OUT (default /tmp/wrk-cal-<mode>-<time>).
set -euo pipefail
mode=${1:?usage: wrk-cal.sh pairs|extra}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${OUT:-/tmp/wrk-cal-$mode-$(date +%H%M%S)}
mkdir -p "$OUT/bin"
cd "$ROOT"
CGO_ENABLED=0 go build -o "$OUT/bin/" ./bench/benchtool ./cmd/loadgen
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

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # utime+stime of the process, ticks
hz=$(getconf CLK_TCK)
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
# measured NAME COMMAND...: runs COMMAND under /usr/bin/time (NAME.time) and
# appends the machine's busy ticks and HAProxy's and the handler's to NAME.txt.
measured() {
	local name=$1 b0 h0 e0
	shift
	b0=$(busy)
	h0=$(cpu $HAP_PID)
	e0=$(cpu $ECHO_PID)
	/usr/bin/time -f '%U %S' -o "$OUT/$name.time" "$@"
	echo "busy $(($(busy) - b0)) haproxy $(($(cpu $HAP_PID) - h0)) echo $(($(cpu $ECHO_PID) - e0)) hz $hz" >>"$OUT/$name.txt"
}
# shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
run_wrk() {
	measured "$1" sh -c 'exec wrk -t2 -c64 -d10s -s "$1" http://127.0.0.1:18090/transaction/transaction >"$2"' sh "$OUT/post.lua" "$OUT/$1.txt"
}
# shellcheck disable=SC2016 # as above
run_lg() {
	: >"$OUT/$1.txt"
	measured "$1" sh -c 'exec "$1" --quiet --json --redis-url none --verify none --target http://127.0.0.1:18090 -c 64 --duration 10s >"$2"' sh "$OUT/bin/loadgen" "$OUT/$1.json"
}

case $mode in
pairs)
	wrk -t2 -c64 -d2s -s "$OUT/post.lua" http://127.0.0.1:18090/transaction/transaction >/dev/null # warm-up
	for i in 1 2 3; do
		if [ $((i % 2)) -eq 1 ]; then
			run_wrk "wrk-$i"
			run_lg "loadgen-$i"
		else
			run_lg "loadgen-$i"
			run_wrk "wrk-$i"
		fi
	done
	for i in 1 2 3; do
		w=$(awk '/^Requests\/sec/{print $2}' "$OUT/wrk-$i.txt")
		l=$(jq .tx_accepted_per_s "$OUT/loadgen-$i.json")
		echo "pair $i: wrk $w req/s (cpu $(cat "$OUT/wrk-$i.time"); $(tail -1 "$OUT/wrk-$i.txt"))  loadgen $l tx/s (cpu $(cat "$OUT/loadgen-$i.time"); $(cat "$OUT/loadgen-$i.txt"))"
	done | tee "$OUT/summary.txt"
	;;
extra)
	for i in 1 2; do
		wrk -t2 -c64 -d10s http://127.0.0.1:18090/transaction/health >"$OUT/get-router-$i.txt"
		wrk -t2 -c64 -d10s -s "$OUT/post.lua" http://127.0.0.1:15010/transaction >"$OUT/post-direct-$i.txt"
	done
	for f in "$OUT"/get-router-*.txt "$OUT"/post-direct-*.txt; do
		echo "$(basename "$f"): $(awk '/^Requests\/sec/{print $2}' "$f") req/s, non-2xx: $(awk '/Non-2xx/{print $NF}' "$f")"
	done | tee "$OUT/summary.txt"
	;;
*)
	echo "wrk-cal.sh: mode $mode: want pairs or extra" >&2
	exit 2
	;;
esac
echo "results: $OUT" >&2
