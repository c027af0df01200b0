#!/bin/bash
# Session 17, call 2: the 4-bit wgmma GEMM beyond 64 rows (passes of 128 tokens on wgmma
# m64n128k16, x and weights in separate cp.async rings) against the dense path, at batch 48-240
# (ctx 200): --quant-dense-min 512 (the kernels up to 511 rows) vs 33 (dense from 33 rows); bf16
# beside, twice. Then kr-backend-ops --only quant_batched / quant_ops / quant_models on it, and
# the plant (the second pass's positions not moved on: call2/plant-positions.diff) on quant_batched.
# Binaries: the working tree after 458bfac (new/), the plant (plant/).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'graph replay|decode batch [0-9]+ ' $R/$1.txt | grep -v 'ctx 128 \|ctx 4096\|ctx 32768' | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
AT=48:200:32,64:200:32,80:200:32,96:200:32,128:200:32,160:200:16,192:200:16,240:200:16
for rep in 1 2; do
  for q in awq mlx4; do
    run $q-k-$rep 70 $C --arch llama-3.2-3b --quant $q --decode-only --decode-at $AT --quant-dense-min 512; dl $q-k-$rep
    run $q-d-$rep 70 $C --arch llama-3.2-3b --quant $q --decode-only --decode-at $AT --quant-dense-min 33; dl $q-d-$rep
  done
  run bf-$rep 70 $C --arch llama-3.2-3b --decode-only --decode-at $AT; dl bf-$rep
done
( run qb 200 stdbuf -oL $B/new/kr-backend-ops --only quant_batched ) &
( run pqb 200 stdbuf -oL $B/plant/kr-backend-ops --only quant_batched ) &
( run qo 200 stdbuf -oL $B/new/kr-backend-ops --only quant_ops ) &
( run qm 200 stdbuf -oL $B/new/kr-backend-ops --only quant_models ) &
wait
for n in qb pqb qo qm; do echo "== $n: $(grep -c ' ok' $R/$n.txt) ok, $(grep -c FAIL $R/$n.txt) FAIL; last: $(tail -1 $R/$n.txt)" >> $S; done
grep FAIL $R/pqb.txt | head -8 | cut -c1-220 >> $S
grep FAIL $R/qb.txt $R/qo.txt $R/qm.txt | head -8 | cut -c1-220 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c2.tgz -C /tmp r
