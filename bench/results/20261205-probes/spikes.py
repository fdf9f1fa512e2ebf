import sys,collections
rows=[]
for line in open(sys.argv[1]):
    a=line.split()
    if len(a)<2: continue
    e,p=int(a[0]),int(a[1]); rows.append((e,(p-e)/1e6))
rows.sort(); t0=rows[0][0]
b=collections.defaultdict(list)
for e,l in rows: b[int((e-t0)/2e8)].append(l)
sp=[k*0.2 for k in sorted(b) if sorted(b[k])[len(b[k])//2]>15]
lat=sorted(l for _,l in rows)
print(sys.argv[1], "p99 %.1f"%lat[int(len(lat)*0.99)], "spike windows (p50>15ms):", len(sp), ["%.1f"%x for x in sp])
