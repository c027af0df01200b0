#!/bin/bash
# Session 6, call 4: ccd51f4 (e71164e + the fp8_gemm_split_k option, off by default); planted: e71164e without the quad max shuffles final checks (FP8 row GEMV on tensor cores by default; fp8-small up to 16 rows), planted quad-max bug, benchmarks.
source .carry/hdr.sh
N=$B/new/kr-backend-ops; C=$B/new/kr-cuda-bench; P=$B/pl/kr-backend-ops
( run ops-gemv 200 $N --only quant_gemv --qgemv row-tc ) &
( run pl-gemv 200 $P --only quant_gemv --qgemv row-tc ) &
( run ops-models 150 $N --only quant_models ) &
( run ops-fp8act 150 $N --only fp8_act ) &
( run ops-quick 150 $N --quick ) &
( run ops-long 150 $N --long-only ) &
wait
for f in ops-gemv pl-gemv ops-models ops-fp8act ops-quick ops-long; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt)"; grep -E "FAIL" $R/$f.txt | head -4; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for i in 1 2; do
  run f8-$i 90 $C --arch llama-3.1-8b --quant fp8 --brief --decode-at 16:200:64,32:200:64 --json $R/f8-$i.json
done
for k in 0 2 4; do run sk$k 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 32:200:64,64:200:64 --fp8-split-k $k; done
for f in sk0 sk2 sk4; do echo "$f $(grep -E 'batch 64 |batch 32 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | tr '\n' '|')"; done >> $S
run b8 90 $C --arch llama-3.1-8b --brief --json $R/b8.json
run b3 90 $C --arch llama-3.2-3b --brief --json $R/b3.json
run awq 90 $C --arch llama-3.2-3b --quant awq --brief --json $R/awq.json
run mlx 90 $C --arch llama-3.2-3b --quant mlx4 --brief --json $R/mlx.json
for f in f8-1 f8-2 b8 b3 awq mlx; do echo "$f $(grep -E 'pp512|batch 64 |batch 16 |batch 32 |decode batch 1  ctx 128|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c4.tgz -C /tmp r
( run ops-kvq 100 $N --quick --kv-fp8 ) &
( run ops-qb 100 $N --only quant_batched ) &
( run ops-small 100 $N --only fp8_small ) &
( run ops-sk4 100 $N --only quant_models --fp8-split-k 4 ) &
wait
for f in ops-kvq ops-qb ops-small ops-sk4; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt)"; grep -E "FAIL" $R/$f.txt | head -4; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c4.tgz -C /tmp r
gzip $R/ops-*.txt $R/pl-*.txt
tar czf $O/c4.tgz -C /tmp r
