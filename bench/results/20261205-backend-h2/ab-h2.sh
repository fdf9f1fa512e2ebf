#!/usr/bin/env bash
set -u
for i in 1 2 3; do
  if [ $((i % 2)) -eq 1 ]; then order="main h2exp"; else order="h2exp main"; fi
  for d in $order; do
    (cd /work/$d && bash bench/ab.sh "proto-$d" >/dev/null 2>&1) || echo "ab failed: $d $i"
    sleep 5
  done
done
echo done
