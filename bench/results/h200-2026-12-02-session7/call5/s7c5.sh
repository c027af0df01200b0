#!/bin/bash
# Session 7, call 5: the wgmma GEMM with an 8-stage ring where its grid has one CTA an SM; plans printed; final checks.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops
( run ops-wg 85 stdbuf -oL $N --only fp8_wgmma ) &
( run ops-quick 85 stdbuf -oL $N --quick ) &
wait
for f in ops-wg ops-quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -5 | cut -c1-200 >> $S; done
run ops-models 40 stdbuf -oL $N --only quant_models
echo "== ops-models: $(grep -c ' ok$' $R/ops-models.txt) ok, $(grep -c FAIL $R/ops-models.txt) FAIL; last: $(tail -1 $R/ops-models.txt)" >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c5.tgz -C /tmp r
run gb 40 $C --fp8-gemm-bench --arch llama-3.1-8b
grep -E "wgmma" $R/gb.txt | awk '{print $3,$5,$7,$9,$10,$11,$12,$13,$14,$15,$16}' >> $S
for sp in 2 4 8; do run gbs$sp 40 $C --fp8-gemm-bench --arch llama-3.1-8b --fp8-gemm-split $sp; echo "split $sp: $(grep -E 'qgemv.*fp8-wgmma' $R/gbs$sp.txt | awk '{print $5"/"$7"/"$9":"$10}' | tr '\n' ' ')" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c5.tgz -C /tmp r
run f8wg1 50 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64
run bf1 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
run f8lt1 50 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64 --fp8-wgmma-gemm 0
run f8wg2 50 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64
for f in f8wg1 bf1 f8lt1 f8wg2; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |decode batch 1  ctx 128|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c5.tgz -C /tmp r
