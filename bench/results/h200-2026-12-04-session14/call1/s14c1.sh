#!/bin/bash
# Session 14, call 1: where a batch-1 decode step goes inside the graph (CUPTI kernel timeline,
# libkr_cupti_trace.so = src/bench/cuda/cupti_trace.cc), 3B AWQ, 3B bf16, 8B FP8. Binary: ada7477.
source .carry/hdr.sh
C=$B/cur/kr-cuda-bench
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
for m in "awq:--arch llama-3.2-3b --quant awq" "bf16:--arch llama-3.2-3b" "fp8:--arch llama-3.1-8b --quant fp8"; do
  n=${m%%:*}; a=${m#*:}
  CUDA_INJECTION64_PATH=$B/libkr_cupti_trace.so KR_CUPTI_OUT=$R/tr-$n.csv run tr-$n 120 $C $a --profile-decode 8 --profile-batch 1
  python3 $B/kernel_timeline.py $R/tr-$n.csv 8 > $R/sum-$n.txt 2>&1; echo "== $n" >> $S; head -40 $R/sum-$n.txt | cut -c1-200 >> $S
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt $R/*.csv
tar czf $O/c1.tgz -C /tmp r
