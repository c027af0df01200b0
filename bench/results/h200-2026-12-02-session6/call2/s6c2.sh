#!/bin/bash
# Session 6, call 2: 471fbb3 (FP8 batch-1 row GEMV on tensor cores = auto; fp8-small merged, default 16 rows).
source .carry/hdr.sh
N=$B/new/kr-backend-ops; C=$B/new/kr-cuda-bench
( run ops-gemvtc 200 $N --only quant_gemv --qgemv row-tc ) &
( run ops-models 150 $N --only quant_models ) &
( run ops-fp8act 150 $N --only fp8_act ) &
( run ops-quick 150 $N --quick ) &
wait
for f in ops-gemvtc ops-models ops-fp8act ops-quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt)"; grep -E "FAIL" $R/$f.txt | head -8; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run gv 60 $C --gemv-bench --quant fp8 --arch llama-3.1-8b
grep -E "T 1 " $R/gv.txt | grep -E " row" >> $S
for i in 1 2; do
  run tc$i 90 $C --arch llama-3.1-8b --quant fp8 --brief --decode-at 16:200:64,32:200:64
  run row$i 90 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --qgemv row
done
for f in tc1 row1 tc2 row2; do echo "$f $(grep -E 'pp512|batch 64 |batch 16 |batch 32 |decode batch 1  ctx 128|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/; .*roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c2.tgz -C /tmp r
