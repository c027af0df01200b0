#!/bin/bash
# Session 10, call 6: the final tree (wgmma 4-bit GEMM at 33..64 rows, the default; shared wgmma and
# cluster-sum helpers): checks, a planted bug (plant-g32.patch: a group that starts at a step's second
# chunk keeps the first chunk's meta), 3B AWQ decode with the default against --qgemm-batched v2.
source .carry/hdr.sh
N=$B/fin/kr-backend-ops; P=$B/bug/kr-backend-ops; C=$B/fin/kr-cuda-bench
( run qb 90 stdbuf -oL $N --only quant_batched ) &
( run plant 90 stdbuf -oL $P --only quant_batched ) &
( run quick 60 stdbuf -oL $N --quick; run qm 20 stdbuf -oL $N --only quant_models ) &
( run wg 45 stdbuf -oL $N --only fp8_wgmma ) &
wait
for f in qb plant quick qm wg; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -3 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
run a1 30 $C --arch llama-3.2-3b --quant awq $D
run v1 30 $C --arch llama-3.2-3b --quant awq $D --qgemm-batched v2
for f in a1 v1; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/qb.txt $R/plant.txt $R/quick.txt $R/wg.txt
tar czf $O/c6.tgz -C /tmp r
