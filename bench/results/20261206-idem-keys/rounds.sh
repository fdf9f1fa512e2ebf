#!/usr/bin/env bash
# rounds.sh MAIN NORETRY FIRST LAST: rounds FIRST to LAST of three fresh stacks, order rotated each round:
#   plain  MAIN's haproxy.cfg, transactions without Idempotency-Key;
#   keyed  MAIN's haproxy.cfg, --idempotency-keys (HAProxy keeps a copy of each keyed POST for a retry);
#   nocopy NORETRY's haproxy.cfg (retry off for every POST), --idempotency-keys.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
main=$1 noretry=$2 first=$3 last=$4
variants=(plain keyed nocopy)
for r in $(seq "$first" "$last"); do
	for k in 0 1 2; do
		v=${variants[$(((k + r - 1) % 3))]}
		case $v in
		plain) bash "$here/keyab.sh" "$main" "$v-$r" ;;
		keyed) bash "$here/keyab.sh" "$main" "$v-$r" --idempotency-keys ;;
		nocopy) bash "$here/keyab.sh" "$noretry" "$v-$r" --idempotency-keys ;;
		esac
	done
done
