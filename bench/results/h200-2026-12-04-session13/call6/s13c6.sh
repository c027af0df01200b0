#!/bin/bash
# Session 13, call 6: B1 (the stream T <= 8 GEMV's 4-bit mask and magic exponent in one lop3)
# against K (15d39d2): checks on B1, per-GEMV times at T = 1 and 8 (stream path), 3B decode at
# batch 1/16/32/64 (AWQ, MLX-4) alternated, bf16 once.
source .carry/hdr.sh
( run qb 150 stdbuf -oL $B/B1/kr-backend-ops --only quant_batched ) &
( run quick 100 stdbuf -oL $B/B1/kr-backend-ops --quick; run qm 40 stdbuf -oL $B/B1/kr-backend-ops --only quant_models ) &
wait
for f in qb quick qm; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for v in K B1; do
  run gv-$v 90 $B/$v/kr-cuda-bench --gemv-bench --quant awq --arch llama-3.2-3b
  echo "gv $v: $(grep -E 'stream +T' $R/gv-$v.txt | awk '{printf "T%s N%s K%s %s | ", $5, $7, $9, $10}')" >> $S
done
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for rep in 1 2 3; do
  for v in K B1; do run $v-$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl $v-$rep; done
done
for v in K B1; do run m-$v 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m-$v; done
run b1 40 $B/B1/kr-cuda-bench --arch llama-3.2-3b $D; dl b1
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c6.tgz -C /tmp r
