#!/bin/bash
# Session 14, call 9: matmul_add (o_proj / down_proj add the residual in the quantized GEMV's epilogue,
# the norm after them moves into the next GEMV's prologue; CudaOptions::fuse_residual_add) against
# --no-fuse-residual-add in the same binary; checks (quant_ops has the matmul_add cases; quant_models
# runs the tiny models' decode through it); a planted bug (the epilogue drops the old residual).
source .carry/hdr.sh
C=$B/rf/kr-cuda-bench; N=$B/rf/kr-backend-ops
( run qo 170 stdbuf -oL $N --only quant_ops ) &
( run pqo 170 stdbuf -oL $B/plant/kr-backend-ops --only quant_ops ) &
( run qm 40 stdbuf -oL $N --only quant_models; run pqm 40 stdbuf -oL $B/plant/kr-backend-ops --only quant_models; run quick 100 stdbuf -oL $N --quick; run qb 120 stdbuf -oL $N --only quant_batched ) &
wait
for f in qo qm quick qb pqo pqm; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
grep -E "matmul_add" $R/qo.txt | head -14 | cut -c1-170 >> $S
grep -E "FAIL" $R/pqo.txt | head -4 | cut -c1-170 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
dl() { echo "$1 $(grep -E 'batch (64|16) |DIFFERENT|graph replay|decode batch 1 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; [0-9.]* GB\/step.*roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 4:200:64,64:200:64"
for rep in 1 2; do
  run a-$rep 40 $C --arch llama-3.2-3b --quant awq $D; dl a-$rep
  run aoff-$rep 40 $C --arch llama-3.2-3b --quant awq $D --no-fuse-residual-add; dl aoff-$rep
  run m-$rep 40 $C --arch llama-3.2-3b --quant mlx4 $D; dl m-$rep
  run moff-$rep 40 $C --arch llama-3.2-3b --quant mlx4 $D --no-fuse-residual-add; dl moff-$rep
done
run g8 40 $C --arch llama-3.1-8b --quant gptq8 --brief --decode-only; dl g8
run b3 40 $C --arch llama-3.2-3b --brief --decode-only; dl b3
run f8 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only; dl f8
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c9.tgz -C /tmp r
