# The top warp-stall reasons (PC sampling) of an ncu --page raw --csv export.
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
if len(rows) < 3:
    print('no raw rows'); sys.exit()
hdr = rows[0]; vals = rows[2]
st = []
for h, v in zip(hdr, vals):
    if 'pcsamp_warps_issue_stalled' in h and not h.endswith('not_issued'):
        try: st.append((float(v.replace(',', '')), h))
        except ValueError: pass
tot = sum(v for v, _ in st) or 1
for v, h in sorted(st, reverse=True)[:12]: print(f'  {100*v/tot:5.1f}%  {h}')
for h, v in zip(hdr, vals):
    if any(k in h for k in ('lts__t_bytes.sum.per_second', 'dram__bytes_read.sum.per_second', 'smsp__inst_executed.sum ', 'sm__throughput.avg.pct', 'l1tex__data_bank_conflicts')):
        print(' ', h, v)
