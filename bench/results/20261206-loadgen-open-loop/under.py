# under.py: see profile.sh. Usage: under.py PERF_DATA REQUESTS FRAME DEPTH
# (perf script of PERF_DATA, µs or switches per request sent).
import sys,subprocess,collections
data, n, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
depth=int(sys.argv[4]) if len(sys.argv)>4 else 1
hz=4999
out=subprocess.run(["perf","script","-i",data,"-F","comm,tid,ip,sym"],capture_output=True,text=True).stdout
stacks=[]; cur=[]
for line in out.split("\n"):
    if not line.strip():
        if cur: stacks.append(cur); cur=[]
        continue
    if not line.startswith((" ","\t")): cur=[]; continue
    parts=line.split(None,1); cur.append(parts[1] if len(parts)>1 else "?")
c=collections.Counter()
for s in stacks:
    for k,f in enumerate(s):
        if f.startswith(root):
            # child frames: s[k-1] ... leaf at s[0]
            key=" <- ".join(reversed(s[max(0,k-depth):k])) or "(self)"
            c[key]+=1; break
tot=sum(c.values())
print(root,"samples",tot,"%.1f us/req"%(tot/hz/n*1e6))
for b,v in c.most_common(20): print("  %5.1f us/req  %s"%(v/hz/n*1e6,b[:150]))
