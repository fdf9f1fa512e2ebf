#!/usr/bin/env bash
# down-loop.sh: how down-*.txt were made.
# V=a|b: STACK_SHARE_DIR=/tmp/cs/$V (see ab-cold.sh); /tmp/cs/stackbin: the launcher built from
# the commit under test (go build -o /tmp/cs/stackbin ./cmd/stack). A down still running
# 2.5 s after it began gets its process-compose dumped (SIGQUIT) with `ss -xp` beside it.
# `stack down` in a loop, its last line per run (the slow case: `stack down` 5 s late).
cd "$(git rev-parse --show-toplevel)"; export PATH=$PWD/.stack/bin:$PATH
for i in $(seq 1 ${N:-60}); do v=${V:-b}
 STACK_SHARE_DIR=/tmp/cs/$v /tmp/cs/stackbin up --detach --wait >/dev/null 2>&1; sleep 1
 pc=$(cat .stack/process-compose.pid)
 ( sleep 2.5; if [ -e /proc/$pc/stat ] && [ "$(awk '{print $3}' /proc/$pc/stat)" != Z ]; then ss -xp > /tmp/cs/c2-ss-$i.txt; kill -QUIT $pc; sleep 0.3; cp -r .stack/logs /tmp/cs/c2-logs-$i; echo "run $i caught"; fi ) &
 r=$(STACK_SHARE_DIR=/tmp/cs/$v /tmp/cs/stackbin down 2>&1 | tail -1); echo "$v $i $r"
 wait
done
