#!/bin/bash
# Session 14, call 4: PDL for the row kernels of batched steps (--pdl-rows: norms, GLU, flash decode) with
# the decode-size wgmma GEMMs (FP8 and 4-bit) signalling dependents after their main loop (--late-trigger),
# alone and together, against neither; 8B FP8 and 3B AWQ batch 64 alternated with bf16.
# Binary: ada7477 + the first form of ../call5/rows-late-experiment.patch (one --pdl-rows switch).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
( run quick 100 stdbuf -oL $B/new/kr-backend-ops --quick ) &
dl() { echo "$1 $(grep -E 'batch (64|32) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 32:200:64,64:200:64"
for rep in 1 2; do
  run f0-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D; dl f0-$rep
  run fR-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D --pdl-rows; dl fR-$rep
  run fL-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D --late-trigger; dl fL-$rep
  run fRL-$rep 60 $C --arch llama-3.1-8b --quant fp8 $D --pdl-rows --late-trigger; dl fRL-$rep
  run g0-$rep 60 $C --arch llama-3.1-8b $D; dl g0-$rep
  run gR-$rep 60 $C --arch llama-3.1-8b $D --pdl-rows; dl gR-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 16:200:64,64:200:64"
for rep in 1 2; do
  run a0-$rep 40 $C --arch llama-3.2-3b --quant awq $D; dl a0-$rep
  run aRL-$rep 40 $C --arch llama-3.2-3b --quant awq $D --pdl-rows --late-trigger; dl aRL-$rep
  run b0-$rep 40 $C --arch llama-3.2-3b $D; dl b0-$rep
  run bR-$rep 40 $C --arch llama-3.2-3b $D --pdl-rows; dl bR-$rep
done
wait
for f in quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c4.tgz -C /tmp r
