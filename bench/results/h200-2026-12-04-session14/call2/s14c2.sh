#!/bin/bash
# Session 14, call 2: 3B AWQ batch-1 decode with the stream GEMV's K split forced to 1/2/4/8 for every
# matrix (--qgemv-split), twice, against the default plan; CUPTI timeline of split 1 and 2. Binary: ada7477.
source .carry/hdr.sh
C=$B/cur/kr-cuda-bench
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
dl() { echo "$1 $(grep -E 'decode batch 1 ' $R/$1.txt | tr -s ' ' | sed 's/decode batch 1 ctx 128//; s/; 2.300.*roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run d$rep 40 $C --arch llama-3.2-3b --quant awq --brief --decode-only; dl d$rep
  for sp in 1 2 4 8; do run s$sp-$rep 40 $C --arch llama-3.2-3b --quant awq --brief --decode-only --qgemv-split $sp; dl s$sp-$rep; done
done
for sp in 1 2; do
  CUDA_INJECTION64_PATH=$B/libkr_cupti_trace.so KR_CUPTI_OUT=$R/tr-s$sp.csv run tr-s$sp 120 $C --arch llama-3.2-3b --quant awq --profile-decode 8 --profile-batch 1 --qgemv-split $sp
  python3 $B/kernel_timeline.py $R/tr-s$sp.csv 8 > $R/sum-s$sp.txt 2>&1; echo "== s$sp" >> $S; head -12 $R/sum-s$sp.txt | cut -c1-130 >> $S
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt $R/*.csv
tar czf $O/c2.tgz -C /tmp r
