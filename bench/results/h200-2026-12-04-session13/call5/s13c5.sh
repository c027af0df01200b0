#!/bin/bash
# Session 13, call 5: K (per-thread addresses, shuffle lanes, shift and magic exponent kept in
# registers across the step loop) against X (1e4db1b): checks on K, SASS counts, per-GEMM times,
# 3B decode at batch 16/32/64 (AWQ, MLX-4, bf16) alternated, and 8B FP8 against bf16 at batch 64.
source .carry/hdr.sh
( run qb 150 stdbuf -oL $B/K/kr-backend-ops --only quant_batched ) &
( run quick 100 stdbuf -oL $B/K/kr-backend-ops --quick; run qm 40 stdbuf -oL $B/K/kr-backend-ops --only quant_models ) &
wait
for f in qb quick qm; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; done
for v in X K; do
  cuobjdump -sass $B/$v/kr-cuda-bench 2>/dev/null | awk '/Function : .*qgemm_wgmma_kernel/{if(!d){p=1;d=1;print;next}} /Function : /{p=0} p' > $R/sass-$v.txt
  echo "$v sass: $(wc -l < $R/sass-$v.txt) lines, LOP3 $(grep -c LOP3 $R/sass-$v.txt), SHFL $(grep -c SHFL $R/sass-$v.txt), LDGSTS $(grep -c LDGSTS $R/sass-$v.txt), S2R $(grep -c S2R $R/sass-$v.txt), STL $(grep -c STL $R/sass-$v.txt)" >> $S
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for v in X K; do
  run qg-$v 60 $B/$v/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b
  echo "qg $v: $(grep -E 'wgmma +T (16|64) ' $R/qg-$v.txt | awk '{printf "T%s N%s K%s %s | ", $5, $7, $9, $10}')" >> $S
done
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for rep in 1 2 3; do
  for v in X K; do run $v-$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl $v-$rep; done
  run b$rep 40 $B/K/kr-cuda-bench --arch llama-3.2-3b $D; dl b$rep
done
run m1 40 $B/K/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m1
for rep in 1 2; do
  run f$rep 60 $B/K/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl f$rep
  run g$rep 60 $B/K/kr-cuda-bench --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64; dl g$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c5.tgz -C /tmp r
