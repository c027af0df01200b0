#!/bin/bash
# Session 6, call 1: main 450bb80 checks (fp8_act, quant_models, --quick incl. prefill 300); branch fp8-small2 (merged with main) checks and timings; FP8 row GEMV baseline.
source .carry/hdr.sh
M=$B/main; S2=$B/s2
( run ops-fp8act 150 $M/kr-backend-ops --only fp8_act ) &
( run ops-models 150 $M/kr-backend-ops --only quant_models ) &
( run ops-quick 150 $M/kr-backend-ops --quick ) &
wait
( run s2-small 150 $S2/kr-backend-ops --only fp8_small ) &
( run s2-models 150 $S2/kr-backend-ops --only quant_models ) &
wait
for f in ops-fp8act ops-models ops-quick s2-small s2-models; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt)"; grep -E "FAIL" $R/$f.txt | head -8; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run gb 90 $S2/kr-cuda-bench --fp8-gemm-bench --arch llama-3.1-8b
grep -E "us" $R/gb.txt | head -40 >> $S
run gv 60 $M/kr-cuda-bench --gemv-bench --quant fp8 --arch llama-3.1-8b
tail -20 $R/gv.txt >> $S
run f8s 90 $S2/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief
run f8c 90 $S2/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief --fp8-small-gemm 0
run f8sd 90 $S2/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64
run f8cd 90 $S2/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64 --fp8-small-gemm 0
for f in f8s f8c f8sd f8cd; do echo "$f $(grep -E 'pp512|batch 64 |batch 16 |batch 32 |decode batch 1  ctx 128|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/; .*roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt $R/s2-*.txt
tar czf $O/c1.tgz -C /tmp r
