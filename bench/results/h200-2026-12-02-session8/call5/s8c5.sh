#!/bin/bash
# Session 8, call 5: GLU + FP8 rows over a thread-block cluster per row (new) vs 6f633e8 (old); planted bug
# (no cross-block max) against --only fp8_act; forced K splits of the wgmma GEMM (old = HEAD kernel); final briefs.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops; C0=$B/old/kr-cuda-bench; P=$B/plant/kr-backend-ops
( run ops-act 40 stdbuf -oL $N --only fp8_act; run ops-models 40 stdbuf -oL $N --only quant_models ) &
( run plant 40 stdbuf -oL $P --only fp8_act; run ops-quick 60 stdbuf -oL $N --quick ) &
wait
for f in ops-act plant ops-models ops-quick; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -3 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c5.tgz -C /tmp r
D="--decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2; do
  run f8n$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D
  run f8o$r 50 $C0 --arch llama-3.1-8b --quant fp8 --brief $D
done
run bf 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
for f in f8n1 f8o1 f8n2 f8o2 bf; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c5.tgz -C /tmp r
for s in 2 3 4; do run gs$s 25 $C0 --fp8-gemm-bench --arch llama-3.1-8b --fp8-gemm-split $s; done
for s in 2 3 4; do echo "split $s: $(grep -E 'fp8-wgmma' $R/gs$s.txt | awk '{printf "%s/%s/%s:%s ", $5,$7,$9,$10}')"; done >> $S
run f8full 50 $C --arch llama-3.1-8b --quant fp8 --brief
run bffull 50 $C --arch llama-3.1-8b --brief
run b3 40 $C --arch llama-3.2-3b --brief
run aw 40 $C --arch llama-3.2-3b --quant awq --brief
run mlx 40 $C --arch llama-3.2-3b --quant mlx4 --brief
for f in f8full bffull b3 aw mlx; do echo "$f $(grep -E 'decode batch|prefill pp512|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt $R/plant.txt
tar czf $O/c5.tgz -C /tmp r
