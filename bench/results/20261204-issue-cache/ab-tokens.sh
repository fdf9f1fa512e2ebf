#!/usr/bin/env bash
# A/B of auth-api with and without the issued-token cache (token.Issuer), on
# the token path alone: auth-api on a unix socket behind HAProxy (haproxy.cfg,
# access log "errors", as bench/run.sh), and auth-api direct, each loaded by
# `loadgen --mode token -c 64` for DURATION; PAIRS pairs, the order swapped in
# every other pair. CPU per token of auth-api and HAProxy from --watch-pid.
#
#   ab-tokens.sh OLD_AUTH_API NEW_AUTH_API [PAIRS] [DURATION]
set -euo pipefail
old=${1:?old auth-api binary}
new=${2:?new auth-api binary}
pairs=${3:-4}
dur=${4:-5s}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
out=$(dirname "$0")
work=$(mktemp -d /tmp/ab-tok.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/loadgen" "$root/cmd/loadgen"
export JWT_SECRET=ab-tokens-0123456789abcdef0123456789 LOG_LEVEL=warn
one() { # label binary
	local label=$1 bin=$2 sock=$work/auth.sock
	HTTP_HOST=127.0.0.1 HTTP_PORT=15901 HTTP_SOCKET=$sock "$bin" >/dev/null 2>&1 &
	local auth=$!
	PLATFORM_HOST=127.0.0.1 PLATFORM_PORT=18190 HAPROXY_STATS_PORT=18194 HAPROXY_ACCESS_LOG=errors \
		AUTH_RATE_LIMIT=100000000 AUTH_API_SERVER=unix@$sock CORE_API_SERVER=unix@$sock \
		haproxy -db -f "$root/haproxy.cfg" >/dev/null 2>&1 &
	local hap=$!
	for _ in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:18190/auth/health && break; sleep 0.05; done
	"$work/loadgen" --quiet --mode token --redis-url none --verify none --target http://127.0.0.1:18190 -c 64 --duration 2s >/dev/null
	"$work/loadgen" --quiet --json --mode token --redis-url none --verify none --target http://127.0.0.1:18190 \
		-c 64 --duration "$dur" --watch-pid $$ >"$out/$label-router.json"
	"$work/loadgen" --quiet --json --mode token --redis-url none --verify none --token-url http://127.0.0.1:15901/token \
		-c 64 --duration "$dur" --watch-pid $$ >"$out/$label-direct.json"
	kill "$hap" "$auth"; wait "$hap" "$auth" 2>/dev/null || true
}
for i in $(seq "$pairs"); do
	if ((i % 2)); then one "pair$i-a-old" "$old"; one "pair$i-b-new" "$new"
	else one "pair$i-a-new" "$new"; one "pair$i-b-old" "$old"; fi
done
