#!/bin/bash
# Session 11, call 1: session 10's prepared calls 6 and 7 (the final tree `fin` = 5baec9a: checks with a
# planted bug; Nsight Compute on the wgmma 4-bit GEMM), per-kernel times of one decode step (3B AWQ
# batch 1, 8B FP8 batch 64), timing-only builds of the wgmma kernel (now: weights copied only for the
# first 4 ring stages; nox: x only for the first 4 stages), and two candidates: rot (fb3ca1e: the
# 4-bit wgmma CTAs start their K slices at rotated steps; rotbug = rot + plant-wrap.patch) and f8rot
# (rot + f8rot.patch: the same in the FP8 wgmma GEMM).
source .carry/hdr.sh
N=$B/fin/kr-backend-ops; C=$B/fin/kr-cuda-bench
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run plant 150 stdbuf -oL $B/bug/kr-backend-ops --only quant_batched ) &
( run rqb 150 stdbuf -oL $B/rot/kr-backend-ops --only quant_batched ) &
( run rplant 150 stdbuf -oL $B/rotbug/kr-backend-ops --only quant_batched ) &
( run quick 100 stdbuf -oL $N --quick; run qm 40 stdbuf -oL $N --only quant_models ) &
( run wg 100 stdbuf -oL $N --only fp8_wgmma ) &
( run f8wg 100 stdbuf -oL $B/f8rot/kr-backend-ops --only fp8_wgmma; run f8qm 40 stdbuf -oL $B/f8rot/kr-backend-ops --only quant_models ) &
wait
for f in qb plant rqb rplant quick qm wg f8wg f8qm; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -3 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
qgline() { echo "qg-$1 $(grep -E ' T (16 |64 )' $R/qg-$1.txt | grep -E 'wgmma|bf16' | awk '{print $3":"$5":"$7"x"$9":"$10}' | tr '\n' ' ')" >> $S; }
for v in fin now nox rot; do run qg-$v 60 $B/$v/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b; qgline $v; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
dl() { echo "$1 $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay|decode batch 1 ' $R/$1.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | cut -c1-60 | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run a$rep 40 $C --arch llama-3.2-3b --quant awq $D; dl a$rep
  run r$rep 40 $B/rot/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl r$rep
  run m$rep 40 $B/rot/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m$rep
  run f$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl f$rep
  run g$rep 60 $B/f8rot/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl g$rep
done
run b8 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64; dl b8
run b3 40 $C --arch llama-3.2-3b --brief --decode-only --decode-at 64:200:64; dl b3
echo "elapsed $(( $(date +%s) - START ))s" >> $S
# per-kernel times of one decode step (kernels serialised by ncu; L2 not flushed)
M="--profile-from-start off --clock-control none --cache-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size --csv"
run t3b1 60 ncu $M $B/rot/kr-cuda-bench --arch llama-3.2-3b --quant awq --profile-decode 1 --profile-batch 1
run t8b64 90 ncu $M $B/f8rot/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --profile-decode 1 --profile-batch 64
python3 .carry/sumk.py $R/t3b1.txt $R/t8b64.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
# Nsight Compute on the wgmma kernel (rot; qkv [5120 x 3072], 64 tokens: its first launches at T 64)
run nq 120 ncu --clock-control none --kernel-name regex:qgemm_wgmma_kernel --launch-skip 2 --launch-count 1 --set full --import-source no -o $R/nq -f $B/rot/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b
ncu -i $R/nq.ncu-rep --page details > $R/nq-details.txt 2>&1
ncu -i $R/nq.ncu-rep --page raw --csv > $R/nq-raw.csv 2>&1
grep -E "qgemm_wgmma|Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Registers Per|Achieved Occupancy|Grid Size|Cluster Size|Issue Slots Busy|Warp Cycles Per Issued|No Eligible|Dynamic Shared|Executed Instructions  |Memory Throughput|Bank" $R/nq-details.txt | head -40 >> $S
python3 .carry/stalls.py $R/nq-raw.csv >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt $R/nq-raw.csv; rm -f $R/*.ncu-rep
tar czf $O/c1.tgz -C /tmp r
