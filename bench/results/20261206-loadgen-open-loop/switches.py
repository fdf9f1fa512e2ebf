# switches.py: see profile.sh. Usage: switches.py PERF_DATA REQUESTS
# (perf script of PERF_DATA, µs or switches per request sent).
import sys,subprocess,collections
data,n=sys.argv[1],int(sys.argv[2])
out=subprocess.run(["perf","script","-i",data,"-F","comm,tid,event,trace,ip,sym"],capture_output=True,text=True).stdout
c=collections.Counter(); cur=None; frames=[]
def flush():
    if cur is None: return
    # find first Go runtime/user frame
    user=[f for f in frames if not f.startswith(("[","__","schedule","do_","x64","entry","syscall_exit","exit_to","arch_","ep_poll","futex_","hrtimer","common_nsleep","__x64"))]
    key=" <- ".join(user[:4])
    c[(cur,key)]+=1
for line in out.split("\n"):
    if not line.strip(): continue
    if not line.startswith((" ","\t")):
        flush(); frames=[]
        st = "R" if "prev_state=R" in line else "S"
        cur=st; continue
    p=line.split(None,1); frames.append(p[1] if len(p)>1 else "?")
flush()
tot=sum(c.values()); print("switch-outs",tot,"per req %.2f"%(tot/n))
for (st,k),v in c.most_common(14): print("  %.3f/req %s %s"%(v/n,st,k[:200]))
