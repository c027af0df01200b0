#!/bin/bash
# Session 12, call 4: the final tree (f95bd84, `fin`): checks, then 8B FP8 against bf16 at batch 64
# (alternated three times) and 3B AWQ / MLX-4 / bf16 decode at batch 1, 16, 32, 64.
source .carry/hdr.sh
N=$B/fin/kr-backend-ops; C=$B/fin/kr-cuda-bench
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run quick 100 stdbuf -oL $N --quick; run qm 40 stdbuf -oL $N --only quant_models ) &
wait
for f in qb quick qm; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
for rep in 1 2 3; do
  run f$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl f$rep
  run g$rep 60 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64; dl g$rep
done
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for rep in 1 2; do
  run a$rep 40 $C --arch llama-3.2-3b --quant awq $D; dl a$rep
  run m$rep 40 $C --arch llama-3.2-3b --quant mlx4 $D; dl m$rep
  run b$rep 40 $C --arch llama-3.2-3b $D; dl b$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c4.tgz -C /tmp r
