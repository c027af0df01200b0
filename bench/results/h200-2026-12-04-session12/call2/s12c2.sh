#!/bin/bash
# Session 12, call 2: cur (4d487f7) against v4 (4d487f7 + v4.patch: the quantized GEMMs' cluster
# K-slice sum by float4 DSMEM loads instead of scalar ones, wgmma and kV2 kernels); v4pl = 4d487f7 +
# v4pl.patch (v4 with a planted bug: the last rank's first float4 of each pair left out of the sum).
source .carry/hdr.sh
N=$B/v4/kr-backend-ops
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run plant 150 stdbuf -oL $B/v4pl/kr-backend-ops --only quant_batched ) &
( run qm 40 stdbuf -oL $N --only quant_models; run quick 100 stdbuf -oL $N --quick ) &
wait
for f in qb plant qm quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma, $(grep FAIL $R/$f.txt | grep -c 'v2') v2); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -2 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
qgline() { echo "qg-$1 $(grep -E ' T (16 |64 )' $R/qg-$1.txt | grep -E 'wgmma' | awk '{print $5":"$7"x"$9":"$10}' | tr '\n' ' ')" >> $S; }
for v in cur v4; do run qg-$v 60 $B/$v/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b; qgline $v; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
dl() { echo "$1 $(grep -E 'batch (64|32|16) |DIFFERENT|graph replay|decode batch 1  ctx 128 ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/; .*//' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for v in cur v4; do
    run a$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl a$v$rep
    run m$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m$v$rep
  done
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c2.tgz -C /tmp r
