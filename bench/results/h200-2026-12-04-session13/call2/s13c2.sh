#!/bin/bash
# Session 13, call 2: token-major sums and the balanced cluster sum of the wgmma 4-bit GEMM (`new`)
# against HEAD (`base`): checks, a planted bug, the phase trace, 3B decode at batch 16/32/64.
source .carry/hdr.sh
N=$B/new/kr-backend-ops
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run quick 100 stdbuf -oL $N --quick; run qm 40 stdbuf -oL $N --only quant_models ) &
( run plant 150 stdbuf -oL $B/pl/kr-backend-ops --only quant_batched ) &
wait
for f in qb quick qm plant; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
grep FAIL $R/plant.txt | head -3 | cut -c1-200 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run qg 90 $B/newtr/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b
grep -E "(wgmma|bf16) +T (16|32|64) |trace|barrier" $R/qg.txt | cut -c1-330 >> $S
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for rep in 1 2 3; do
  run a$rep 40 $B/base/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl a$rep
  run n$rep 40 $B/new/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl n$rep
  [ $rep -lt 3 ] && { run b$rep 40 $B/new/kr-cuda-bench --arch llama-3.2-3b $D; dl b$rep; }
done
run m1 40 $B/new/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m1
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c2.tgz -C /tmp r
