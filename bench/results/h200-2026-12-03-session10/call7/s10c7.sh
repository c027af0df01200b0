#!/bin/bash
# Prepared for the next session (not run): Nsight Compute on the final tree's wgmma 4-bit GEMM, qkv
# [5120 x 3072] at 64 tokens (its first launches in kr-cuda-bench --qgemm-bench). Call 4's filter
# (--kernel-name-base demangled with a template-argument regex) matched nothing; this one filters on
# the function's base name. Binaries: fin/ as call 6.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run nq 150 ncu --clock-control none --kernel-name regex:qgemm_wgmma_kernel --launch-skip 2 --launch-count 1 --set full --import-source no -o $R/nq -f $C --qgemm-bench --quant awq --arch llama-3.2-3b
ncu -i $R/nq.ncu-rep --page details > $R/nq-details.txt 2>&1
ncu -i $R/nq.ncu-rep --page raw --csv > $R/nq-raw.csv 2>&1
grep -E "qgemm_wgmma|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Grid Size|Cluster Size|Issue Slots Busy|Warp Cycles Per Issued|No Eligible|Dynamic Shared|Stall" $R/nq-details.txt | head -40 >> $S
python3 - $R/nq-raw.csv >> $S <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
hdr = rows[0]; vals = rows[2] if len(rows) > 2 else rows[-1]
st = []
for h, v in zip(hdr, vals):
    if 'pcsamp_warps_issue_stalled' in h and not h.endswith('not_issued'):
        try: st.append((float(v.replace(',', '')), h))
        except ValueError: pass
tot = sum(v for v, _ in st) or 1
for v, h in sorted(st, reverse=True)[:12]: print(f"  {100*v/tot:5.1f}%  {h}")
PY
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/nq-details.txt $R/nq-raw.csv; rm -f $R/*.ncu-rep
tar czf $O/c7.tgz -C /tmp r
