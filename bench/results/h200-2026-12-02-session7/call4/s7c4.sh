#!/bin/bash
# Session 7, call 4: the wgmma GEMM with cluster (DSMEM) split-K reduce and an n16 form, default for 9..64 rows (small-T GEMM off); cluster helpers moved to cuda_cluster.cuh.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops
( run ops-wg 100 stdbuf -oL $N --only fp8_wgmma ) &
( run ops-qb 100 stdbuf -oL $N --only quant_batched ) &
wait
for f in ops-wg ops-qb; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -5 | cut -c1-200 >> $S; done
run gb 60 $C --fp8-gemm-bench --arch llama-3.1-8b
grep -E "wgmma|cublaslt" $R/gb.txt | awk '{print $3,$5,$7,$9,$10}' | tr '\n' ' ' >> $S; echo >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c4.tgz -C /tmp r
for r in 1 2; do
  run f8wg$r 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64
  run f8lt$r 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64 --fp8-wgmma-gemm 0
  run bf$r 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
done
run f8sm 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64 --fp8-small-gemm 16
for f in f8wg1 f8lt1 bf1 f8wg2 f8lt2 bf2 f8sm; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |decode batch 1  ctx 128|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c4.tgz -C /tmp r
run ops-models 60 stdbuf -oL $N --only quant_models
echo "== ops-models: $(grep -c ' ok$' $R/ops-models.txt) ok, $(grep -c FAIL $R/ops-models.txt) FAIL; last: $(tail -1 $R/ops-models.txt)" >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c4.tgz -C /tmp r
