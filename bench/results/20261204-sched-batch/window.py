import re,sys
rx=re.compile(r'^\s*([\d.]+) \(\s*([\d.]+) ms\): psp-connector/(\d+) write\(fd: (\d+), buf: \S+, count: (\d+)\)\s+= (\d+)')
last={}  # tid -> end of last stdout write of a round
gaps=[]
for line in open(sys.argv[1]):
    m=rx.match(line)
    if not m: continue
    t,d,tid,fd,cnt=float(m[1]),float(m[2]),m[3],int(m[4]),int(m[5])
    if fd==1 and cnt>=60:
        last[tid]=t+d
    elif fd>2 and cnt>100 and tid in last:
        gaps.append((t-last.pop(tid))*1000)
gaps.sort()
n=len(gaps)
if n==0: print(sys.argv[2],'no rounds'); sys.exit()
q=lambda p:gaps[min(n-1,int(p*n))]
print('%s rounds %d window us p50 %.0f p90 %.0f p99 %.0f max %.0f  >1ms %.1f%%'%(sys.argv[2],n,q(.5),q(.9),q(.99),gaps[-1],100*sum(g>1000 for g in gaps)/n),flush=True)
