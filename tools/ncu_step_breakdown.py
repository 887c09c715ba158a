"""Per-kernel breakdown of one decode step from an ncu CSV.

Input: `ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --csv
--launch-skip N --launch-count 340 nanovllm bench ... --enforce-eager > FILE.csv` (a window of
decode kernels). Whole layers (decode attention to the next decode attention) are averaged and
scaled to 28 layers; the LM head product and the sampler are counted once. Prints a markdown
table: per-layer microseconds, per-step milliseconds, share, DRAM megabytes per step and TB/s.

Usage: python3 tools/ncu_step_breakdown.py FILE.csv
"""
import csv, sys, collections
def load(f):
    lines=open(f).read().splitlines()
    start=[i for i,l in enumerate(lines) if l.startswith('"ID"')][0]
    k=collections.OrderedDict()
    for r in csv.DictReader(lines[start:]):
        d=k.setdefault(r['ID'],{'name':r['Kernel Name'].split('(')[0]})
        v=float(r['Metric Value'].replace(',','')); u=r['Metric Unit']
        if r['Metric Name']=='gpu__time_duration.sum':
            d['us']={'nsecond':1e-3,'ns':1e-3,'usecond':1,'us':1,'msecond':1e3,'ms':1e3}[u]*v
        else:
            d['b']=d.get('b',0)+v*{'byte':1,'Kbyte':1e3,'Mbyte':1e6,'Gbyte':1e9}[u]
    return list(k.values())
def is_decode_attention(n):  # the CUDA-core kernel and the INT8 tensor-core one, not a reduce
    return 'decode_attention' in n and 'reduce' not in n
def label(n):
    if is_decode_attention(n): return 'decode attention'
    for key,lab in [('decode_reduce','split reduce'),('rms_norm_kernel<__nv_bfloat16, __nv_bfloat16, 8, 1>','add_rms_norm'),('rms_norm','rms_norm'),('qkv_rope','qkv_rope_store'),('silu','silu_mul'),('gather','gather_rows'),('sample','sample')]:
        if key in n: return lab
    return 'GEMM'
ks=load(sys.argv[1])
g=[i for i,d in enumerate(ks) if 'gather' in d['name']]
lm=ks[g[0]+1]  # the LM head product follows the sampled rows' gather
# per layer: the 4 GEMMs between consecutive attention kernels; classify GEMMs by their order in a layer
att=[i for i,d in enumerate(ks) if is_decode_attention(d['name'])]
per=collections.OrderedDict(); layers=0
for a,b in zip(att,att[1:]):
    if any('gather' in ks[i]['name'] for i in range(a,b)): continue
    layers+=1
    gem=0
    for i in range(a,b):
        lab=label(ks[i]['name'])
        if lab=='GEMM':
            lab=['o_proj','gate_up','down','qkv'][gem]; gem+=1
        p=per.setdefault(lab,[0,0.0,0.0]); p[0]+=1; p[1]+=ks[i]['us']; p[2]+=ks[i]['b']
print(f"{sys.argv[1]}: {layers} whole layers averaged; per decode step = 28 layers + LM head + sample")
print(f"| kernel | per layer us | per step ms | share | MB per step | TB/s |")
print("| --- | --- | --- | --- | --- | --- |")
rows=[(k,v[1]/layers,v[2]/layers) for k,v in per.items()]
rows.append(('LM head (sampled rows)', lm['us']/28, lm['b']/28))
smp=[d for d in ks if 'sample' in d['name']][0]
rows.append(('sample', smp['us']/28, smp['b']/28))
tot=sum(r[1] for r in rows)*28
for k,us,b in sorted(rows,key=lambda r:-r[1]):
    print(f"| {k} | {us:.1f} | {us*28/1000:.3f} | {100*us*28/tot:.1f}% | {b*28/1e6:.0f} | {b/us/1e6:.2f} |")
totb=sum(r[2] for r in rows)*28
print(f"| total | | {tot/1000:.3f} | 100% | {totb/1e6:.0f} | {totb/tot/1e6:.2f} |")
