import re,sys,collections
def parse(p):
    line=None; out=[]
    for l in open(p):
        m=re.search(r'//## File "([^"]+)", line (\d+)',l)
        if m: line=(m.group(1).split('/')[-1],int(m.group(2))); continue
        m=re.match(r'\s*/\*([0-9a-f]+)\*/\s*(.*?);',l)
        if m: out.append((m.group(1),m.group(2).strip(),line))
    return out
ins=parse(sys.argv[1])
hm=[i for i,x in enumerate(ins) if 'HMMA' in x[1]]
print('instrs',len(ins),'hmma',len(hm))
# unit loops: find HMMA clusters of 16 or 24 consecutive within 300
cl=[]
for i in hm:
    if cl and i-cl[-1][-1]<60: cl[-1].append(i)
    else: cl.append([i])
for c in cl:
    if len(c) in (16,24):
        a,b=c[0]-250,c[-1]+400
        sp=[(k,ins[k][1][:40],ins[k][2]) for k in range(a,b) if 'LDL' in ins[k][1] or 'STL' in ins[k][1]]
        print('cluster',c[0],len(c), 'spills near:',sp)
