#!/bin/bash
# Session 7, call 6: the split plan counts two CTAs an SM as sharing its bandwidth (final tree of the wgmma GEMM).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops
( run ops-wg 40 stdbuf -oL $N --only fp8_wgmma ) &
run gb 30 $C --fp8-gemm-bench --arch llama-3.1-8b
wait
echo "== ops-wg: $(grep -c ' ok$' $R/ops-wg.txt) ok, $(grep -c FAIL $R/ops-wg.txt) FAIL" >> $S
grep -E "wgmma" $R/gb.txt | awk '{print $3,$5,$7,$9,$10,$11,$12,$13,$14,$15,$16}' >> $S
run f8wg1 40 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64
run bf1 30 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
for f in f8wg1 bf1; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |decode batch 1  ctx 128|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c6.tgz -C /tmp r
