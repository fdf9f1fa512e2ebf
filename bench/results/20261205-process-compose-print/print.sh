#!/usr/bin/env bash
# What process-compose's copy of every log line to its standard output costs
# (BENCHMARKS.md, Suggestions item 14). With the TUI off, process-compose
# v1.64.1 prints each line of each process to stdout (printLogs in
# src/app/project_runner.go) besides writing it to the process's log file;
# a detached stack's stdout is /dev/null. Measured with a process-compose
# built as tools/build-process-compose builds it plus print-logs-env.patch,
# which skips the print when PC_NO_PRINT_LOGS is set, so that both variants
# run the same binary:
#
#   print.sh build DIR   build that process-compose into DIR
#   print.sh perf DIR    perf stat of process-compose's writes and CPU, 5 s
#                        into a 12 s closed loop through HAProxy, each way
#   print.sh ab DIR      bench/ab.sh, four alternated pairs, the order swapped
#                        every other pair
set -euo pipefail
mode=${1:?usage: print.sh build|perf|ab DIR}
dir=${2:?usage: print.sh build|perf|ab DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
case $mode in
build)
	mod=github.com/f1bonacc1/process-compose
	src=$(cd "$root/tools" && go list -m -f '{{.Dir}}' "$mod")
	version=$(cd "$root/tools" && go list -m -f '{{.Version}}' "$mod")
	rm -rf "$dir/tree" && mkdir -p "$dir" && cp -R "$src" "$dir/tree" && chmod -R u+w "$dir/tree"
	bash "$root/nix/process-compose-without-swagger-ui.sh" "$dir/tree"
	(cd "$dir/tree" && patch -p1 <"$here/print-logs-env.patch" &&
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $mod/src/config.Version=$version" -o "$dir/process-compose" ./src)
	;;
perf)
	export PATH=$dir:$PATH
	for v in "" 1; do
		echo "== PC_NO_PRINT_LOGS=${v:-(unset)}"
		(
			export PC_NO_PRINT_LOGS=$v
			[ -n "$v" ] || unset PC_NO_PRINT_LOGS
			# shellcheck source=/dev/null # the checkout's
			. "$root/bench/stack.sh"
			bench_build command
			"$STACK" up --detach --wait --timeout 120s >/dev/null 2>&1
			pc=$(cat "$STACK_STATE_DIR/process-compose.pid")
			echo "process-compose: $(readlink "/proc/$pc/exe")"
			"$LOADGEN" --quiet --json --redis-url "$REDIS_URL" --target "http://127.0.0.1:$PLATFORM_PORT" -c 64 --duration 12s --watch-pid "$pc" >"$WORK/load.json" &
			sleep 3
			perf stat -e 'syscalls:sys_enter_write,context-switches,task-clock' -p "$pc" -- sleep 5 2>&1 | grep -E 'write|switches|task-clock'
			wait
			jq -r '"accepted \(.tx_accepted) in \(.elapsed_s|floor) s; process-compose \(.cpu.processes_cpu_s["process-compose"]) s of CPU, \(.cpu.processes_cpu_s["process-compose"]*1e6/.tx_accepted|floor) µs per transaction"' "$WORK/load.json"
		)
	done
	;;
ab)
	export PATH=$dir:$PATH
	cd "$root"
	for i in 1 2 3 4; do
		if [ $((i % 2)) = 1 ]; then order="print noprint"; else order="noprint print"; fi
		for v in $order; do
			if [ "$v" = noprint ]; then bash bench/ab.sh pc-noprint PC_NO_PRINT_LOGS=1; else bash bench/ab.sh pc-print; fi
		done
	done
	;;
esac
