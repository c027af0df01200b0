#!/bin/bash
# Session 17, call 1: (a) where the dense path (dequantize once a matrix, cuBLAS) overtakes the
# batched 4-bit kernel (kV2) since 75ba10a: 3B AWQ / MLX-4 decode at batch 48-192 (ctx 200) with
# CudaOptions::quant_dense_min_tokens at its default 256 and at 33 (dense from 33 rows); bf16
# beside them, twice. (b) pp512 kernel timelines of 8B FP8 and 8B bf16 (CUPTI,
# libkr_cupti_trace.so), to see where FP8 prefill's time goes. Binary: 458bfac.
source .carry/hdr.sh
C=$B/cur/kr-cuda-bench
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
dl() { echo "$1 $(grep -E 'graph replay|decode batch [0-9]+ ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//' | tr '\n' '|')" >> $S; }
AT=48:200:32,64:200:32,80:200:32,96:200:32,128:200:32,192:200:16
for rep in 1 2; do
  for q in awq mlx4; do
    run $q-256-$rep 70 $C --arch llama-3.2-3b --quant $q --decode-only --decode-at $AT; dl $q-256-$rep
    run $q-33-$rep 70 $C --arch llama-3.2-3b --quant $q --decode-only --decode-at $AT --quant-dense-min 33; dl $q-33-$rep
  done
  run bf-$rep 70 $C --arch llama-3.2-3b --decode-only --decode-at $AT; dl bf-$rep
done
for m in "fp8:--arch llama-3.1-8b --quant fp8" "bf16:--arch llama-3.1-8b"; do
  n=${m%%:*}; a=${m#*:}
  CUDA_INJECTION64_PATH=$B/libkr_cupti_trace.so KR_CUPTI_OUT=$R/tp-$n.csv run tp-$n 120 $C $a --profile-prefill 512
  python3 $B/kernel_timeline.py $R/tp-$n.csv 1 > $R/psum-$n.txt 2>&1; echo "== $n" >> $S; head -32 $R/psum-$n.txt | cut -c1-180 >> $S
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt $R/*.csv
tar czf $O/c1.tgz -C /tmp r
