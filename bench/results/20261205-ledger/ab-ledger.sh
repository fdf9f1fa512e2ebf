#!/bin/bash
set -u
for i in 1 2 3; do
  (cd /tmp/ab-before && bash bench/ab.sh before-ledger) > /tmp/ab-before-$i.txt 2>&1
  (cd /work/main && bash bench/ab.sh ledger) > /tmp/ab-ledger-$i.txt 2>&1
done
for i in 1 2; do
  (cd /work/main && BENCH_RATE=1000 bash bench/ab.sh ledger-1000) > /tmp/ab-ledger1000-$i.txt 2>&1
  (cd /tmp/ab-before && BENCH_RATE=1000 bash bench/ab.sh before-ledger-1000) > /tmp/ab-before1000-$i.txt 2>&1
done
echo done > /tmp/ab-done
