#!/bin/bash
# Session 8, call 3: main + wgmma copy hoisting + q4-cluster-fit + CudaOptions::pdl_rows (PDL for the norms of
# steps > 4 tokens, RoPE, the GLU and the FP8 activation quantization). Checks, then on/off alternated.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops
( run ops-quick 100 stdbuf -oL $N --quick; run ops-act 60 stdbuf -oL $N --only fp8_act; run ops-qb 60 stdbuf -oL $N --only quant_batched ) &
( run ops-wg 80 stdbuf -oL $N --only fp8_wgmma ) &
wait
for f in ops-quick ops-act ops-qb ops-wg; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -5 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c3.tgz -C /tmp r
D="--decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2; do
  run f8on$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D
  run f8off$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D --no-pdl-rows
  run bfon$r 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
  run bfoff$r 40 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64 --no-pdl-rows
done
for f in f8on1 f8off1 bfon1 bfoff1 f8on2 f8off2 bfon2 bfoff2; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c3.tgz -C /tmp r
run f8full 60 $C --arch llama-3.1-8b --quant fp8 --brief
run bffull 60 $C --arch llama-3.1-8b --brief
run b3on 50 $C --arch llama-3.2-3b --brief
run b3off 50 $C --arch llama-3.2-3b --brief --no-pdl-rows
run awon 40 $C --arch llama-3.2-3b --quant awq --brief
run mlxon 40 $C --arch llama-3.2-3b --quant mlx4 --brief
for f in f8full bffull b3on b3off awon mlxon; do echo "$f $(grep -E 'decode batch|prefill pp512|pp512|DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c3.tgz -C /tmp r
