#!/usr/bin/env bash
# tl.sh VARIANT [N]: cold start timelines (ms after launch) of share dir /tmp/cs/VARIANT
set -euo pipefail
export STACK_STATE_DIR=/tmp/cs/state PLATFORM_PORT=18080 HAPROXY_STATS_PORT=18404 AUTH_API_PORT=15001 CORE_API_PORT=15002 PSP_CONNECTOR_PORT=15003 STACK_SHARE_DIR=/tmp/cs/$1 PATH=/tmp/cs/bin:$PATH AUTH_RATE_LIMIT=1000000000
for i in $(seq 1 ${2:-3}); do
rm -rf "$STACK_STATE_DIR"
T0=$(date +%s.%N)
R=$(/tmp/cs/bin/benchtool coldstart --runs 1 --up "/tmp/cs/bin/stack up --detach" --down "true" --url "http://127.0.0.1:18080/auth/health" --url "http://127.0.0.1:18080/transaction/health" --json 2>/dev/null)
sleep 0.5
python3 - "$T0" "$STACK_STATE_DIR/logs" "$R" <<'PY'
import sys,json,re,datetime,os
t0=float(sys.argv[1]); logs=sys.argv[2]; r=json.loads(sys.argv[3])
ev=[]
for line in open(os.path.join(logs,'process-compose.log')):
    line=re.sub(r'\x1b\[[0-9;]*m','',line)
    m=re.match(r'(\d\d-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \w+ (.*)',line)
    if not m: continue
    msg=m.group(2)
    if 'Started' in msg or 'Process Compose' in msg or 'ready' in msg.lower():
        mm=re.search(r'process=(\S+)',msg)
        msg=('pc started '+mm.group(1)) if mm else 'pc: '+msg[:60]
        ts=datetime.datetime.strptime('20'+m.group(1),'%Y-%m-%d %H:%M:%S.%f').replace(tzinfo=datetime.timezone.utc).timestamp()
        ev.append((ts,msg))
for svc in ['auth-api','core-api','psp-connector']:
    for line in open(os.path.join(logs,svc+'.log')):
        try: d=json.loads(line)
        except: continue
        if d.get('msg') in ('starting','ready','listening') or 'redis' in d.get('msg','').lower():
            ts=datetime.datetime.fromisoformat(d['time'].replace('Z','+00:00')).timestamp()
            ev.append((ts,f"  {svc}: {d['msg'][:50]}"))
ev.append((t0+r['median_ready_ms']/1000,'=== BOTH ROUTES 200'))
for t,e in sorted(ev): print(f"{(t-t0)*1000:7.1f} {e}")
PY
echo ---
/tmp/cs/bin/stack down >/dev/null 2>&1
done
