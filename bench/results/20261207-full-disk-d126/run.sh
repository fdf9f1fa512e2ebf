#!/usr/bin/env bash
# The "A full disk" scenario with the edited process-compose (D126).
set -u
cd /work/main
export PATH=/tmp/platbin:/tmp/hap-new/bin:$PATH
umount /tmp/full 2>/dev/null; mkdir -p /tmp/full
mount -t tmpfs -o size=16m,mode=0700 tmpfs /tmp/full
export STACK_STATE_DIR=/tmp/full/state
stack up --detach --wait || exit 1
loadgen --rate 300 --duration 45s -c 32 --drain-timeout 240s --json > /tmp/fullrun/report.json 2>/tmp/fullrun/loadgen.err &
lg=$!
sleep 10; dd if=/dev/zero of=/tmp/full/fill bs=1M 2>/dev/null; dd if=/dev/zero of=/tmp/full/fill bs=4k oflag=append conv=notrunc 2>/dev/null
date -u +%T.%N > /tmp/fullrun/full-at
ls -l $STACK_STATE_DIR/logs > /tmp/fullrun/logs-at-full.txt
sleep 20; rm /tmp/full/fill; date -u +%T.%N > /tmp/fullrun/freed-at
ls -l $STACK_STATE_DIR/logs > /tmp/fullrun/logs-at-free.txt
wait $lg; echo "loadgen exit $?" > /tmp/fullrun/loadgen.rc
sleep 2
ls -l $STACK_STATE_DIR/logs > /tmp/fullrun/logs-at-end.txt
cp -r $STACK_STATE_DIR/logs /tmp/fullrun/logs
df -k /tmp/full > /tmp/fullrun/df.txt
stack down
umount /tmp/full
