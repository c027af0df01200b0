#!/bin/bash
# Session 6, call 4: ccd51f4 (e71164e + the fp8_gemm_split_k option, off by default); planted: e71164e without the quad max shuffles. Final checks and benchmarks.
source .carry/hdr.sh
N=$B/new/kr-backend-ops; C=$B/new/kr-cuda-bench; P=$B/pl/kr-backend-ops
( run ops-gemv 150 $N --only quant_gemv --qgemv row-tc ) &
( run pl-gemv 150 $P --only quant_gemv --qgemv row-tc ) &
( run ops-models 100 $N --only quant_models ) &
( run ops-quick 100 $N --quick ) &
wait
for f in ops-gemv pl-gemv ops-models ops-quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt)"; grep -E "FAIL" $R/$f.txt | head -4; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run f8 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-at 16:200:64 --json $R/f8.json
for f in f8; do echo "$f $(grep -E 'pp512|batch 64 |batch 16 |batch 32 |decode batch 1  ctx 128|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
tar czf $O/c4.tgz -C /tmp r
for k in 0 4; do run sk$k 45 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64 --fp8-split-k $k; done
for f in sk0 sk4; do echo "$f $(grep -E 'batch 64 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt $R/pl-*.txt
tar czf $O/c4.tgz -C /tmp r
