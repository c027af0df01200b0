#!/bin/bash
# Session 10, call 1 (was session 9 call 4): attention writes o_proj's FP8 rows (cur = main with branch attn-fp8 merged) against
# cur --no-fp8-attention-out, prev = e3bbd8f and rm = e3bbd8f with the RoPE epilogue's loads back inline
# (ropemid.patch); planted bug (the flash decode tail leaves the last kv head out of the amax).
source .carry/hdr.sh
C=$B/cur/kr-cuda-bench; N=$B/cur/kr-backend-ops; P=$B/bug/kr-backend-ops; CP=$B/prev/kr-cuda-bench; CR=$B/rm/kr-cuda-bench
( run ops-act 60 stdbuf -oL $N --only fp8_act; run ops-models 40 stdbuf -oL $N --only quant_models; run ops-wg 40 stdbuf -oL $N --only fp8_wgmma ) &
( run plant 60 stdbuf -oL $P --only fp8_act; run ops-quick 80 stdbuf -oL $N --quick ) &
wait
for f in ops-act plant ops-models ops-wg ops-quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -8 | cut -c1-200 >> $S; done
grep -iE "cover|split" $R/ops-act.txt | head -4 | cut -c1-200 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c1.tgz -C /tmp r
D="--decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2; do
  run f8c$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D
  run f8a$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D --no-fp8-attention-out
  run f8p$r 50 $CP --arch llama-3.1-8b --quant fp8 --brief $D
  run f8r$r 50 $CR --arch llama-3.1-8b --quant fp8 --brief $D
done
run bf 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
for f in f8c1 f8a1 f8p1 f8r1 f8c2 f8a2 f8p2 f8r2 bf; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c1.tgz -C /tmp r
run f8full 50 $C --arch llama-3.1-8b --quant fp8 --brief
run bffull 50 $C --arch llama-3.1-8b --brief
for f in f8full bffull; do echo "$f $(grep -E 'decode batch|prefill pp512|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt $R/plant.txt
tar czf $O/c1.tgz -C /tmp r
run awq 60 $C --arch llama-3.2-3b --quant awq --brief
run b3 60 $C --arch llama-3.2-3b --brief
for f in awq b3; do echo "$f $(grep -E 'decode batch|prefill pp512|DIFFERENT|bytes|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c1.tgz -C /tmp r
