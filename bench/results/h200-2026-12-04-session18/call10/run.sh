#!/bin/bash
# Session 18, call 10: --mega-gemv-bench with the aligned deterministic form cut into quarter-pair
# items for qkv, o and down (balance over 132 CTAs; the consumer adds 4 slices in order), beside
# whole pairs; 28 layers twice, 2 layers once.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c10.tgz -C /tmp r
