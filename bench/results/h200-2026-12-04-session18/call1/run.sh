#!/bin/bash
# Session 18, call 1: kr-cuda-bench --mega-gemv-bench (the 3B 4-bit GEMV chain as one persistent
# kernel vs the serving stream GEMVs, 28 layers), twice; 3B AWQ batch-1 decode for the step's number.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
for n in mega1 mega2; do cat $R/$n.txt >> $S; done
run awq 120 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 1:128:64
grep -E "replay|decode batch 1 " $R/awq.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c1.tgz -C /tmp r
