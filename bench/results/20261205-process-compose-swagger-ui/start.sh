#!/usr/bin/env bash
# median wall ms of `process-compose version`, alternated
declare -A t
for i in $(seq 1 21); do
  for v in root lean; do
    s=$(date +%s%N); /tmp/exp/${v}bin/process-compose version >/dev/null; e=$(date +%s%N)
    t[$v]+="$(( (e-s)/1000 )) "
  done
done
for v in root lean; do echo "$v median µs: $(tr ' ' '\n' <<<"${t[$v]}" | grep . | sort -n | sed -n 11p)"; done
