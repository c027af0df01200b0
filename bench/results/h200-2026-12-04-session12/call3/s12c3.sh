#!/bin/bash
# Session 12, call 3: v4 (4d487f7 + ../call2/v4.patch) against v5 (4d487f7 + v5.patch: the cluster K-slice
# sum with all of a thread's float4 loads of every rank issued before any sum: one DSMEM round trip);
# v5pl = 4d487f7 + v5pl.patch (v5 with the planted bug of ../call2/v4pl.patch). bf16 3B for reference.
source .carry/hdr.sh
N=$B/v5/kr-backend-ops
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run plant 150 stdbuf -oL $B/v5pl/kr-backend-ops --only quant_batched ) &
( run qm 40 stdbuf -oL $N --only quant_models; run quick 100 stdbuf -oL $N --quick ) &
wait
for f in qb plant qm quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma, $(grep FAIL $R/$f.txt | grep -c 'v2') v2); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -2 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
qgline() { echo "qg-$1 $(grep -E ' T (16 |64 )' $R/qg-$1.txt | grep -E 'wgmma' | awk '{print $5":"$7"x"$9":"$10}' | tr '\n' ' ')" >> $S; }
for v in v4 v5; do run qg-$v 60 $B/$v/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b; qgline $v; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for v in v4 v5; do
    run a$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl a$v$rep
    run m$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m$v$rep
  done
done
run b3 40 $B/v5/kr-cuda-bench --arch llama-3.2-3b $D; dl b3
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c3.tgz -C /tmp r
