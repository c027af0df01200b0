#!/bin/bash
# Session 16, call 4: kr-attention-check's new cases (decode behind a kernel that stores the step's
# own keys late, the attention launched with PDL) on the kernel and on the plant (every key loaded
# before the wait: call3/plant-prewait.diff), which must fail them. Then attention writing o_proj's
# FP8 rows (--fp8-attention-out) against the quantize kernel after it, 8B FP8 batch 64 / 128, with
# the one-wave 2-warp flash decode; bf16 beside them.
source .carry/hdr.sh
run ac 120 $B/new/kr-attention-check --no-timing; grep -E "FAIL|checks:|late" $R/ac.txt >> $S
run plant 120 $B/plant/kr-attention-check --no-timing; grep -E "FAIL|checks:" $R/plant.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'graph replay|decode batch (1|16|64|128) |prefill pp512' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run fo-$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64,128:200:32 --fp8-attention-out; dl fo-$rep
  run fd-$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64,128:200:32; dl fd-$rep
  run g-$rep 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64,128:200:32; dl g-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c4.tgz -C /tmp r
