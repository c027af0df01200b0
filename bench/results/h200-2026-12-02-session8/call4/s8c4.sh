#!/bin/bash
# Session 8, call 4: warp-specialized wgmma FP8 GEMM (producer warpgroup + mbarrier ring) vs 6f633e8 (old).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops; C0=$B/old/kr-cuda-bench
( run ops-wg 80 stdbuf -oL $N --only fp8_wgmma ) &
( run ops-models 80 stdbuf -oL $N --only quant_models; run ops-act 40 stdbuf -oL $N --only fp8_act ) &
wait
for f in ops-wg ops-models ops-act; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep -E "FAIL|error|rror" $R/$f.txt | head -5 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c4.tgz -C /tmp r
if [ "$(grep -c ' ok$' $R/ops-wg.txt)" -lt 20 ] || grep -q FAIL $R/ops-wg.txt; then echo "stop: ops-wg" >> $S; exit 0; fi
run gbn 45 $C --fp8-gemm-bench --arch llama-3.1-8b
run gbo 45 $C0 --fp8-gemm-bench --arch llama-3.1-8b
for f in gbn gbo; do echo "$f"; grep -E "wgmma|plan" $R/$f.txt | awk '{print $2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13}'; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c4.tgz -C /tmp r
D="--decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2; do
  run f8n$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D
  run f8o$r 50 $C0 --arch llama-3.1-8b --quant fp8 --brief $D
done
run bf 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
for f in f8n1 f8o1 f8n2 f8o2 bf; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c4.tgz -C /tmp r
for s in 1 2 3 4 6 8; do run gs$s 25 $C --fp8-gemm-bench --arch llama-3.1-8b --fp8-gemm-split $s; done
for s in 1 2 3 4 6 8; do echo "split $s: $(grep -E 'wgmma' $R/gs$s.txt | awk '{printf "%s/%s/%s:%s ", $4,$5,$6,$7}')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c4.tgz -C /tmp r
