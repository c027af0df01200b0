#!/bin/bash
# Session 14, call 6: the landed form (fin): the 4-bit wgmma GEMM signals its dependents after its main
# loop and the norm / flash decode after it launch with PDL (CudaOptions::pdl_after_late_signal), A/B
# against --no-pdl-after-late-signal in the same binary; checks; FP8 8B batch 64 vs bf16 (unchanged path).
# Binary: 550dd47 (its code; comments in cuda_launch.cuh changed after the build).
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench; N=$B/fin/kr-backend-ops
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run quick 100 stdbuf -oL $N --quick; run qm 40 stdbuf -oL $N --only quant_models ) &
wait
for f in qb quick qm; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for rep in 1 2; do
  run a-$rep 40 $C --arch llama-3.2-3b --quant awq $D; dl a-$rep
  run aoff-$rep 40 $C --arch llama-3.2-3b --quant awq $D --no-pdl-after-late-signal; dl aoff-$rep
  run b-$rep 40 $C --arch llama-3.2-3b $D; dl b-$rep
  run m-$rep 40 $C --arch llama-3.2-3b --quant mlx4 $D; dl m-$rep
done
run moff 40 $C --arch llama-3.2-3b --quant mlx4 $D --no-pdl-after-late-signal; dl moff
for rep in 1 2; do
  run f-$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl f-$rep
  run g-$rep 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64; dl g-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c6.tgz -C /tmp r
