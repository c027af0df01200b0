#!/bin/bash
# Session 13, call 7: B2 (the stream GEMV's per-tile code pointers kept in registers) against B1
# (c04e9ed): checks on B2, per-GEMV times at T = 1 and 8, 3B decode at batch 1/16/32/64 (AWQ
# alternated with bf16; MLX-4 on K = 15d39d2, B1, B2), 8B FP8 against bf16 at batch 1 and 64.
source .carry/hdr.sh
( run qb 150 stdbuf -oL $B/B2/kr-backend-ops --only quant_batched ) &
( run quick 100 stdbuf -oL $B/B2/kr-backend-ops --quick; run qm 40 stdbuf -oL $B/B2/kr-backend-ops --only quant_models ) &
wait
for f in qb quick qm; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for v in B1 B2; do
  run gv-$v 90 $B/$v/kr-cuda-bench --gemv-bench --quant awq --arch llama-3.2-3b
  echo "gv $v: $(grep -E 'stream +T' $R/gv-$v.txt | awk '{printf "T%s N%s K%s %s | ", $5, $7, $9, $10}')" >> $S
done
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for rep in 1 2; do
  for v in B1 B2; do run $v-$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl $v-$rep; done
  run b$rep 40 $B/B1/kr-cuda-bench --arch llama-3.2-3b $D; dl b$rep
done
for v in K B1 B2; do run m-$v 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m-$v; done
for rep in 1 2; do
  run f$rep 60 $B/B1/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl f$rep
  run g$rep 60 $B/B1/kr-cuda-bench --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64; dl g$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c7.tgz -C /tmp r
