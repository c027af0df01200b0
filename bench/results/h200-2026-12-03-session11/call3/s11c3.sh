#!/bin/bash
# Session 11, call 3 (run in session 12): the wgmma 4-bit GEMM at two CTAs an SM (occA.patch on
# 275eafb: one weight step a ring stage, 8 stages, <= 128 registers, K slices while clusters fit and
# slices x row blocks <= 2 x SMs; occB: the same with slices x row blocks <= SMs) against 275eafb
# (`new`); pl = occA + ../call2/plant2.patch. Batch-1 timing-only builds on 275eafb: nn (no add+norm
# kernel at one token, nonorm.patch), na (no attention at one token, noattn.patch), nna (both).
source .carry/hdr.sh
N=$B/occA/kr-backend-ops
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run plant 150 stdbuf -oL $B/pl/kr-backend-ops --only quant_batched ) &
( run qm 40 stdbuf -oL $N --only quant_models; run quick 100 stdbuf -oL $N --quick ) &
( for v in new occA; do cuobjdump -sass $B/$v/kr-cuda-bench 2>/dev/null | awk '/Function : .*qgemm_wgmma_kernelILb0ELi64ELNS0_9QEpilogueE0/{f=1} /Function : /&&!/qgemm_wgmma_kernelILb0ELi64ELNS0_9QEpilogueE0/{f=0} f' > $R/sass-$v.txt; done ) &
wait
for f in qb plant qm quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma, $(grep FAIL $R/$f.txt | grep -c 'v2') v2); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | grep wgmma | head -2 | cut -c1-200 >> $S; done
for v in new occA; do echo "sass-$v: $(wc -l < $R/sass-$v.txt) lines" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
qgline() { echo "qg-$1 $(grep -E ' T (16 |32 |64 )' $R/qg-$1.txt | grep -E 'wgmma|bf16' | awk '{print $3":"$5":"$7"x"$9":"$10}' | tr '\n' ' ')" >> $S; }
for v in new occA occB; do run qg-$v 60 $B/$v/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b; qgline $v; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
dl() { echo "$1 $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay|decode batch 1 ctx 128 [0-9.]* tok/s;' $R/$1.txt | tr -s ' ' | cut -c1-44 | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for v in new occA occB; do
    run a$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl a$v$rep
    run m$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m$v$rep
  done
  run b3$rep 40 $B/new/kr-cuda-bench --arch llama-3.2-3b $D; dl b3$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
# batch 1, 3B AWQ: what the add+norm kernels and attention cost in the replayed step graph
for rep in 1 2; do
  for v in new nn na nna; do run t$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only; dl t$v$rep; done
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
# Nsight Compute on occA's wgmma kernel (qkv [5120 x 3072], 64 tokens)
run nq 120 ncu --clock-control none --kernel-name regex:qgemm_wgmma_kernel --launch-skip 2 --launch-count 1 --set full --import-source no -o $R/nq -f $B/occA/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b
ncu -i $R/nq.ncu-rep --page details > $R/nq-details.txt 2>&1
ncu -i $R/nq.ncu-rep --page raw --csv > $R/nq-raw.csv 2>&1
grep -E "qgemm_wgmma|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Grid Size|Cluster Size|Issue Slots Busy|Warp Cycles Per Issued|No Eligible|Dynamic Shared|Executed Instructions  |Block Limit" $R/nq-details.txt | head -30 >> $S
python3 .carry/stalls.py $R/nq-raw.csv | head -8 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt $R/nq-raw.csv; rm -f $R/*.ncu-rep
tar czf $O/c3.tgz -C /tmp r
