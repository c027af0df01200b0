#!/bin/bash
# Session 9, call 3: where call 2's batch-16 loss comes from. new = e3bbd8f (scales loaded before
# stores, in the RoPE epilogue before the cluster sum), fix = new with the RoPE epilogue's DSMEM sum
# first (/tmp/fix.patch), mid = 7fb6d05; new with --no-fp8-rope-epilogue (nr).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; CM=$B/mid/kr-cuda-bench; CF=$B/fix/kr-cuda-bench
D="--decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2; do
  run f8n$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D
  run f8f$r 50 $CF --arch llama-3.1-8b --quant fp8 --brief $D
  run f8r$r 50 $C --arch llama-3.1-8b --quant fp8 --brief $D --no-fp8-rope-epilogue
  run f8m$r 50 $CM --arch llama-3.1-8b --quant fp8 --brief $D
done
for f in f8n1 f8f1 f8r1 f8m1 f8n2 f8f2 f8r2 f8m2; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c3.tgz -C /tmp r
