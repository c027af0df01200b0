#!/bin/bash
# Session 9, call 1: FP8 qkv RoPE + KV-store epilogue in the wgmma GEMM and the wgmma plan's "one slice fewer
# on the 8-stage ring" (new = 7fb6d05) vs f9e1711 (old); planted bug (the epilogue's cos/sin of pair d ^ 1).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops; C0=$B/old/kr-cuda-bench; P=$B/bug/kr-backend-ops
( run ops-act 60 stdbuf -oL $N --only fp8_act; run ops-models 40 stdbuf -oL $N --only quant_models; run ops-wg 60 stdbuf -oL $N --only fp8_wgmma ) &
( run plant 60 stdbuf -oL $P --only fp8_act; run ops-quick 60 stdbuf -oL $N --quick ) &
wait
for f in ops-act plant ops-models ops-wg ops-quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -4 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c1.tgz -C /tmp r
run gbn 30 $C --fp8-gemm-bench --arch llama-3.1-8b
grep -E 'plan' $R/gbn.txt | head -12 >> $S
echo "gbn: $(grep -E 'fp8-wgmma' $R/gbn.txt | awk '{printf "%s/%s/%s:%s ", $5,$7,$9,$10}')" >> $S
D="--decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2; do
  run f8n$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D
  run f8r$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D --no-fp8-rope-epilogue
  run f8o$r 50 $C0 --arch llama-3.1-8b --quant fp8 --brief $D
done
run bf 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
for f in f8n1 f8r1 f8o1 f8n2 f8r2 f8o2 bf; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c1.tgz -C /tmp r
run f8full 50 $C --arch llama-3.1-8b --quant fp8 --brief
echo "f8full $(grep -E 'decode batch|prefill pp512|DIFFERENT|graph replay' $R/f8full.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')" >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt $R/plant.txt
tar czf $O/c1.tgz -C /tmp r
