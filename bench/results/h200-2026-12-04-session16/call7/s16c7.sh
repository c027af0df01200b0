#!/bin/bash
# Session 16, call 7: the dense dequantization of integer codes (prefill and steps of >= 256 rows
# dequantize each matrix to bf16 for cuBLAS) in stored order (qdequant_stored_kernel: each 16-byte
# code vector read once) instead of one scattered word load per element. Checks: kr-backend-ops
# --only quant_batched (T up to 256: the dense path), quant_ops, quant_models; the plant (rows g and
# g + 8 of a 4-bit tile swapped: plant-dequant.diff) must fail. Then 3B AWQ / MLX-4 / GPTQ / GPTQ-8
# pp512 and batch 256 (ctx 200), bf16 beside them.
source .carry/hdr.sh
for v in new plant; do
  run $v-qb 150 $B/$v/kr-backend-ops --only quant_batched; tail -1 $R/$v-qb.txt >> $S; grep -c FAIL $R/$v-qb.txt >> $S
done
run new-qo 150 $B/new/kr-backend-ops --only quant_ops; tail -1 $R/new-qo.txt >> $S
run new-qm 150 $B/new/kr-backend-ops --only quant_models; tail -1 $R/new-qm.txt >> $S
grep FAIL $R/plant-qb.txt | head -8 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'graph replay|decode batch (1|16|64|128|256) |prefill pp512' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for q in awq mlx4 gptq gptq8; do
  run $q 60 $C --arch llama-3.2-3b --quant $q --brief --decode-at 256:200:16; dl $q
done
run bf 60 $C --arch llama-3.2-3b --brief --decode-at 256:200:16; dl bf
run awq8 60 $C --arch llama-3.1-8b --quant awq --brief --decode-at 256:200:16; dl awq8
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c7.tgz -C /tmp r
