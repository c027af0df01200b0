#!/bin/bash
# Session 15, call 1 (was session 14 call 10): call 9's matmul_add (CudaOptions::fuse_residual_add) with the stream GEMV's norm
# prologue reworked (each row's sum of squares by the whole block, the norm weights staged before the
# wait), against --no-fuse-residual-add in the same binary; then checks, cut by the device time left.
source .carry/hdr.sh
C=$B/rf2/kr-cuda-bench; N=$B/rf2/kr-backend-ops
dl() { echo "$1 $(grep -E 'DIFFERENT|graph replay|decode batch 1 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; [0-9.]* GB\/step.*roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run a-$rep 30 $C --arch llama-3.2-3b --quant awq --brief --decode-only; dl a-$rep
  run aoff-$rep 30 $C --arch llama-3.2-3b --quant awq --brief --decode-only --no-fuse-residual-add; dl aoff-$rep
done
run m 30 $C --arch llama-3.2-3b --quant mlx4 --brief --decode-only; dl m
run moff 30 $C --arch llama-3.2-3b --quant mlx4 --brief --decode-only --no-fuse-residual-add; dl moff
echo "elapsed $(( $(date +%s) - START ))s" >> $S
( run qm 20 stdbuf -oL $N --only quant_models; run quick 30 stdbuf -oL $N --quick ) &
( run qo 55 stdbuf -oL $N --only quant_ops ) &
wait
for f in qm quick qo; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
grep FAIL $R/*.txt | head -5 | cut -c1-200 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c1.tgz -C /tmp r
