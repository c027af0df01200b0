#!/bin/bash
# Session 12, call 1: occA (275eafb + occA.patch: the wgmma 4-bit GEMM at two CTAs an SM) against
# lo (occA + lo.patch: the wgmma kernel from 9 rows instead of 33); lopl = lo + plant2.patch of
# ../../h200-2026-12-03-session11/call2. Batch 1 (3B AWQ): the streaming GEMV's K slices forced to
# 1, 2, 4, 8 (--qgemv-split) against its own choice, end to end, and per matrix (--gemv-bench).
source .carry/hdr.sh
N=$B/lo/kr-backend-ops
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run plant 150 stdbuf -oL $B/lopl/kr-backend-ops --only quant_batched ) &
( run qm 40 stdbuf -oL $N --only quant_models; run quick 100 stdbuf -oL $N --quick ) &
wait
for f in qb plant qm quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma, $(grep FAIL $R/$f.txt | grep -c 'v2') v2); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | grep wgmma | grep -E ' T(9|1[0-9]|2[0-9]|3[0-2]) ' | head -2 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
qgline() { echo "qg-$1 $(grep -E ' T (16 |32 |64 )' $R/qg-$1.txt | grep -E 'wgmma|v2' | awk '{print $3":"$5":"$7"x"$9":"$10}' | tr '\n' ' ')" >> $S; }
run qg-lo 60 $B/lo/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b; qgline lo
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 12:200:64,16:200:64,24:200:64,32:200:64,64:200:64"
dl() { echo "$1 $(grep -E 'batch (64|32|24|16|12) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for v in occA lo; do
    run a$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl a$v$rep
    run m$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m$v$rep
  done
done
run b3 40 $B/lo/kr-cuda-bench --arch llama-3.2-3b $D; dl b3
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for rep in 1 2; do
  run s0$rep 30 $B/lo/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only; dl s0$rep
  for k in 1 2 4 8; do run s$k$rep 30 $B/lo/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only --qgemv-split $k; dl s$k$rep; done
done
run gb 60 $B/lo/kr-cuda-bench --gemv-bench --quant awq --arch llama-3.2-3b
grep -E "T 1 " $R/gb.txt | tr -s ' ' | head -40 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c1.tgz -C /tmp r
