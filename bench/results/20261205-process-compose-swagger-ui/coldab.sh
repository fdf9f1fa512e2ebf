#!/usr/bin/env bash
# Cold start A/B: stock vs lean process-compose, alternated, benchtool coldstart runs of 5 each.
set -euo pipefail
. /work/main/bench/stack.sh
bench_build env ./bench/benchtool >/dev/null
rm -f "$BIN/process-compose"
ROUTER=http://127.0.0.1:$PLATFORM_PORT
for i in 1 2 3 4; do
  for v in root lean; do
    PATH=/tmp/exp/${v}bin:$PATH "$BIN/benchtool" coldstart --runs 5 --up "'$BIN/stack' up --detach" --down "'$BIN/stack' down" \
      --url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json > /tmp/exp/cold-$v-$i.json
    echo "$v $i $(python3 -c "import json,sys; d=json.load(open('/tmp/exp/cold-$v-$i.json')); print({k:v for k,v in d.items() if not isinstance(v,list)})")"
  done
done
