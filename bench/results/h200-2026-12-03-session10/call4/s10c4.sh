#!/bin/bash
# Session 10, call 4: Nsight Compute on the wgmma 4-bit GEMM (call 3's binary): qkv [5120 x 3072] (launch 3) and
# launch 1251 (gate_up [16384 x 3072] or down, by the grid) at 64 tokens inside kr-cuda-bench --qgemm-bench (graph kernel nodes);
# timing-only ablations of its loop (wrong results, patches beside this script): x16 (x staged by 16-byte
# copies, k order not permuted), nowg (no wgmma), nodq (no dequantization).
source .carry/hdr.sh
C=$B/v/kr-cuda-bench.v0
K="regex:qgemm_wgmma_kernel<false, 64"
for v in v0 x16 nowg nodq; do
  run qg-$v 40 $B/v/kr-cuda-bench.$v --qgemm-bench --quant awq --arch llama-3.2-3b
  echo "$v $(grep -E 'wgmma +T (16|64) ' $R/qg-$v.txt | awk '{print $5"/"$7":"$10}' | tr '\n' ' ')" >> $S
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run nq 150 ncu --clock-control none --kernel-name-base demangled --kernel-name "$K" --launch-skip 2 --launch-count 1 --set full --import-source no -o $R/nq -f $C --qgemm-bench --quant awq --arch llama-3.2-3b
run ng 150 ncu --clock-control none --kernel-name-base demangled --kernel-name "$K" --launch-skip 1250 --launch-count 1 --set full -o $R/ng -f $C --qgemm-bench --quant awq --arch llama-3.2-3b
for f in nq ng; do
  ncu -i $R/$f.ncu-rep --page details > $R/$f-details.txt 2>&1
  ncu -i $R/$f.ncu-rep --page raw --csv > $R/$f-raw.csv 2>&1
  echo "== $f" >> $S
  grep -E "qgemm_wgmma|Duration|DRAM Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Grid Size|Cluster Size|Issue Slots Busy|Warp Cycles Per Issued|No Eligible|Dynamic Shared" $R/$f-details.txt | head -24 >> $S
  python3 - $R/$f-raw.csv >> $S <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
hdr = rows[0]; vals = rows[2] if len(rows) > 2 else rows[-1]
st = []
for h, v in zip(hdr, vals):
    if 'pcsamp_warps_issue_stalled' in h and not h.endswith('not_issued'):
        try: st.append((float(v.replace(',', '')), h))
        except ValueError: pass
tot = sum(v for v, _ in st) or 1
for v, h in sorted(st, reverse=True)[:10]: print(f"  {100*v/tot:5.1f}%  {h}")
PY
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*-details.txt $R/*-raw.csv
rm -f $R/*.ncu-rep
tar czf $O/c4.tgz -C /tmp r
