#!/usr/bin/env bash
# timeline of cold starts of variant $1 (ms after t0)
# timeline.sh VARIANT: cold starts of the share dir /tmp/cs/VARIANT, whose probes log to /tmp/cs/probe.log.
set -euo pipefail
. "$(git rev-parse --show-toplevel)/bench/stack.sh"
bench_build command ./bench/benchtool
ROUTER=http://127.0.0.1:$PLATFORM_PORT
export STACK_SHARE_DIR=/tmp/cs/$1
for i in $(seq 1 ${N:-3}); do
rm -rf "$STACK_STATE_DIR" /tmp/cs/probe.log
T0=$(date +%s.%N)
R=$("$BIN/benchtool" coldstart --runs 1 --up "'$BIN/stack' up --detach" --down "true" --url "$ROUTER/auth/health" --url "$ROUTER/transaction/health" --json 2>/dev/null)
sleep 0.3
{
python3 - "$T0" "$STACK_STATE_DIR/logs" "$R" <<'PY'
import sys,json,re,datetime,os
t0=float(sys.argv[1]); logs=sys.argv[2]; r=json.loads(sys.argv[3])
ev=[]
names={1:'redis',2:'psp-connector',3:'core-api',4:'auth-api',5:'haproxy'}
for line in open('/tmp/cs/probe.log'):
    k,t,n,*rc=line.split()
    ev.append((float(t),f"probe {names[int(n)]} {'start' if k=='s' else 'end'}"))
for line in open(os.path.join(logs,'process-compose.log')):
    line=re.sub(r'\x1b\[[0-9;]*m','',line)
    m=re.match(r'(\d\d-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \w+ (.*)',line)
    if not m: continue
    if 'Started' in m.group(2) or 'waiting' in m.group(2) or 'ready' in m.group(2).lower():
        ts=datetime.datetime.strptime('20'+m.group(1),'%Y-%m-%d %H:%M:%S.%f').replace(tzinfo=datetime.timezone.utc).timestamp()
        ev.append((ts,'pc: '+m.group(2)[:70]))
for svc in ['auth-api','core-api','psp-connector']:
    for line in open(os.path.join(logs,svc+'.log')):
        try: d=json.loads(line)
        except: continue
        if d.get('msg') in ('starting','ready'):
            ts=datetime.datetime.fromisoformat(d['time'].replace('Z','+00:00')).timestamp()
            ev.append((ts,f"{svc} {d['msg']}"))
ev.append((t0+r['median_ready_ms']/1000,'BOTH ROUTES 200'))
for t,e in sorted(ev): print(f"{(t-t0)*1000:7.1f} {e}")
PY
} 
echo ---
"$STACK" down >/dev/null 2>&1
done
