# bench/stack.sh: sourced by bench/run.sh and bench/ab.sh, which measure a
# stack of their own. It cds to the checkout (ROOT) and sets up, for the
# sourcing script:
#   WORK    a temporary directory, removed at exit after `stack down`;
#   the stack's environment: a fresh state dir (so Redis starts empty), ports
#           18080/18404/15001-15003 unless BENCH_*_PORT say otherwise (never a
#           developer's stack on 8080), the checkout's files (not an exported
#           STACK_SHARE_DIR), the stack's own Redis and secret, AUTH_RATE_LIMIT
#           raised so tokens are not throttled, and HAProxy's access log from
#           BENCH_ACCESS_LOG: "errors" by default (only failed or abnormal
#           requests, as a high-throughput deployment would), or "all" (the
#           stack.env default: a log line per request in HAProxy and
#           process-compose);
#   REDIS_SOCK, REDIS_URL, BIN, STACK, LOADGEN;
#   bench_build RUNNER [PACKAGE...], which builds the launcher, the services,
#           the load generator and PACKAGEs into BIN (and process-compose,
#           by tools/build-process-compose as the flake builds it, when none
#           is on PATH), without cgo like the Nix package and the
#           launcher (static binaries), each command run through RUNNER, and puts
#           BIN first on PATH, where the launcher looks first: a run measures
#           these binaries, never a rebuild halfway (the launcher rebuilds
#           from the checkout when a source is newer than its binary).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

WORK=$(mktemp -d /tmp/acme-bench.XXXXXX)
export STACK_STATE_DIR=$WORK/state
unset STACK_SHARE_DIR REDIS_URL JWT_SECRET
export PLATFORM_PORT=${BENCH_PLATFORM_PORT:-18080}
export HAPROXY_STATS_PORT=${BENCH_STATS_PORT:-18404}
export AUTH_API_PORT=${BENCH_AUTH_API_PORT:-15001}
export CORE_API_PORT=${BENCH_CORE_API_PORT:-15002}
export PSP_CONNECTOR_PORT=${BENCH_PSP_CONNECTOR_PORT:-15003}
export AUTH_RATE_LIMIT=1000000000
export HAPROXY_ACCESS_LOG=${BENCH_ACCESS_LOG:-errors}

REDIS_SOCK=$STACK_STATE_DIR/redis/redis.sock
REDIS_URL=unix://$REDIS_SOCK
BIN=$WORK/bin
STACK=$BIN/stack
LOADGEN=$BIN/loadgen

bench_build() {
	local run=$1
	shift
	"$run" env CGO_ENABLED=0 go build -o "$BIN/" ./cmd/stack ./cmd/loadgen ./services/auth-api ./services/core-api ./services/psp-connector "$@"
	if ! command -v process-compose >/dev/null; then
		"$run" bash tools/build-process-compose "$BIN/process-compose"
	fi
	export PATH=$BIN:$PATH
}

bench_cleanup() {
	"$STACK" down >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap bench_cleanup EXIT
