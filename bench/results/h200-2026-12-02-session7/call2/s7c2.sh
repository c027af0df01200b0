#!/bin/bash
# Session 7, call 2: HEAD + the FP8 wgmma GEMM for 17..64 rows (uncommitted). Correctness, per-shape timing, 8B FP8 decode with and without it.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops
run ops-wg 110 stdbuf -oL $N --only fp8_wgmma
echo "== ops-wg: $(grep -c ' ok$' $R/ops-wg.txt) ok, $(grep -c FAIL $R/ops-wg.txt) FAIL; last: $(tail -1 $R/ops-wg.txt)" >> $S
grep FAIL $R/ops-wg.txt | head -6 | cut -c1-200 >> $S
run gb 120 $C --fp8-gemm-bench --arch llama-3.1-8b
grep -E "T 64|T 32" $R/gb.txt | awk '{print $2,$3,$5,$7,$9,$10}' >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c2.tgz -C /tmp r
for r in 1 2; do
  run f8wg$r 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 32:200:64,64:200:64
  run f8lt$r 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 32:200:64,64:200:64 --fp8-wgmma-gemm 0
done
for f in f8wg1 f8lt1 f8wg2 f8lt2; do echo "$f $(grep -E 'batch 64 |batch 32 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c2.tgz -C /tmp r
run bf 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
echo "bf $(grep -E 'batch 64 |DIFFERENT|graph replay' $R/bf.txt | tr -s ' ' | tr '\n' '|')" >> $S
run ops-models 60 stdbuf -oL $N --only quant_models
echo "== ops-models: $(grep -c ' ok$' $R/ops-models.txt) ok, $(grep -c FAIL $R/ops-models.txt) FAIL; last: $(tail -1 $R/ops-models.txt)" >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c2.tgz -C /tmp r
