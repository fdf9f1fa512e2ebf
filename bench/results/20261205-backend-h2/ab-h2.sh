#!/usr/bin/env bash
# The A/B of BENCHMARKS.md's "HTTP/2 from HAProxy to the services", as run:
# /work/main was the checkout at 9fcc842, and /work/h2exp a worktree of it
# (git worktree add /work/h2exp 9fcc842) with backend-h2.patch applied. Each
# run's report went to its own checkout's bench/results/ab/ and was copied
# into this directory afterwards.
set -u
for i in 1 2 3; do
  if [ $((i % 2)) -eq 1 ]; then order="main h2exp"; else order="h2exp main"; fi
  for d in $order; do
    (cd /work/$d && bash bench/ab.sh "proto-$d" >/dev/null 2>&1) || echo "ab failed: $d $i"
    sleep 5
  done
done
echo done
