#!/usr/bin/env bash
# throwaway: CPU of an idle stack (machine busy over 20 s), from the checkout in $1
set -euo pipefail
cd "$1"
. bench/stack.sh
bench_build command
"$STACK" up --detach --wait --timeout 120s >/dev/null
sleep 3
read -r _ u n s i w q sq st _ < <(head -1 /proc/stat); a=$((u+n+s+q+sq+st)); ai=$((i+w))
sleep 20
read -r _ u n s i w q sq st _ < <(head -1 /proc/stat); b=$((u+n+s+q+sq+st)); bi=$((i+w))
echo "$2 idle stack: machine busy $(( (b-a)*10 )) ms of $(( (b-a+bi-ai)*10 )) ms over 20 s"
