#!/bin/bash
# Session 14, call 5: which part of --pdl-rows + --late-trigger helps 3B AWQ batch 64 and hurts 8B FP8
# (PDL for the norms of big steps / the GLU / flash decode, each with the wgmma GEMMs' late trigger);
# 3B AWQ batch 1 with one matrix family's K split forced (--qgemv-split -(100c+S): S for the matrices
# of N = 3072 / 16384 / 5120 for c = 0 / 1 / 2 only). Binary: ada7477 + rows-late-experiment.patch.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'batch (64|32) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 64:200:64"
for rep in 1 2; do
  run f0-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D; dl f0-$rep
  run fLN-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D --late-trigger --pdl-norms-big; dl fLN-$rep
  run fLA-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D --late-trigger --pdl-attn; dl fLA-$rep
  run fLG-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D --late-trigger --pdl-glu; dl fLG-$rep
  run g0-$rep 60 $C --arch llama-3.1-8b $D; dl g0-$rep
  run gA-$rep 60 $C --arch llama-3.1-8b $D --pdl-attn; dl gA-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for rep in 1 2; do
  run a0-$rep 40 $C --arch llama-3.2-3b --quant awq $D; dl a0-$rep
  run aL-$rep 40 $C --arch llama-3.2-3b --quant awq $D --late-trigger; dl aL-$rep
  run aLN-$rep 40 $C --arch llama-3.2-3b --quant awq $D --late-trigger --pdl-norms-big; dl aLN-$rep
  run aLA-$rep 40 $C --arch llama-3.2-3b --quant awq $D --late-trigger --pdl-attn; dl aLA-$rep
  run aRL-$rep 40 $C --arch llama-3.2-3b --quant awq $D --late-trigger --pdl-rows; dl aRL-$rep
  run b0-$rep 40 $C --arch llama-3.2-3b $D; dl b0-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
B1="--brief --decode-only"
for rep in 1 2; do
  for sp in 0 -8 -2 -102 -201 -204; do run s$sp-$rep 40 $C --arch llama-3.2-3b --quant awq $B1 --qgemv-split $sp; dl s$sp-$rep; done
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c5.tgz -C /tmp r
