#!/bin/bash
# Session 9, call 2: the wgmma epilogue loads its scales before its stores (new = e3bbd8f) vs 7fb6d05 (mid).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops; CM=$B/mid/kr-cuda-bench
( run ops-act 60 stdbuf -oL $N --only fp8_act; run ops-models 40 stdbuf -oL $N --only quant_models ) &
( run ops-wg 60 stdbuf -oL $N --only fp8_wgmma ) &
wait
for f in ops-act ops-models ops-wg; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -4 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
for v in n m; do X=$C; [ $v = m ] && X=$CM; run gb$v 30 $X --fp8-gemm-bench --arch llama-3.1-8b
  echo "gb$v: $(grep -E 'fp8-wgmma' $R/gb$v.txt | awk '{printf "%s/%s/%s:%s ", $5,$7,$9,$10}')" >> $S; done
D="--decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2 3; do
  run f8n$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D
  run f8m$r 50 $CM --arch llama-3.1-8b --quant fp8 --brief $D
done
run bf 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
for f in f8n1 f8m1 f8n2 f8m2 f8n3 f8m3 bf; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c2.tgz -C /tmp r
