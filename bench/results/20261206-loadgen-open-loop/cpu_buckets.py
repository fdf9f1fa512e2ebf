# cpu_buckets.py: see profile.sh. Usage: cpu_buckets.py PERF_DATA REQUESTS
# (perf script of PERF_DATA, µs or switches per request sent).
import sys,subprocess,collections
data, n = sys.argv[1], int(sys.argv[2])
hz=4999
out=subprocess.run(["perf","script","-i",data,"-F","comm,tid,ip,sym"],capture_output=True,text=True).stdout
stacks=[]; cur=[]
for line in out.split("\n"):
    if not line.strip():
        if cur: stacks.append(cur); cur=[]
        continue
    if not line.startswith((" ","\t")):
        cur=[]; continue
    parts=line.split(None,1)
    cur.append(parts[1] if len(parts)>1 else "?")
if cur: stacks.append(cur)
order=[("idleConnAlive","idleConnAlive"),("loadgen.(*rawIO).alive","idleConnAlive"),("loadgen.(*rawIO).Write","write"),("loadgen.(*rawIO).Read","read"),("net.(*conn).Write","write"),("net.(*conn).Read","read"),("encoding/json","json"),("runtime.sysmon","sysmon"),("runtime.gcBgMarkWorker","gc worker"),("runtime.mallocgc","malloc"),("runtime.findRunnable","findRunnable(idle/steal/netpoll)"),("runtime.schedule","schedule(other)"),("runtime.ready","ready/wakep"),("runtime.wakep","ready/wakep"),("time.Now","time.Now"),("runtime.nanotime","nanotime"),("runtime.(*timers)","runtime timers"),("runtime.(*timer)","runtime timers"),("runtime.selectgo","select/chan"),("runtime.chansend","select/chan"),("runtime.chanrecv","select/chan"),("runtime.gopark","gopark"),("runtime.mcall","mcall"),("loadgen.(*runner).schedule","scheduler goroutine"),("loadgen.","loadgen other"),("runtime.","runtime other")]
c=collections.Counter()
for s in stacks:
    for key,b in order:
        if any(f.startswith(key) or ("."+key) in f or ("/"+key) in f for f in s): c[b]+=1; break
    else: c["other:"+(s[0][:40] if s else "?")]+=1
tot=sum(c.values())
print("samples",tot,"us/req total %.1f"%(tot/hz/n*1e6))
for b,v in c.most_common(25): print("  %-40s %5d  %5.1f us/req  %4.1f%%"%(b,v,v/hz/n*1e6,100*v/tot))
