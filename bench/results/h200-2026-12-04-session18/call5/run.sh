#!/bin/bash
# Session 18, call 5: --mega-gemv-bench with the weights re-laid out in the order the warps read
# them (linear: at each step all warps read one contiguous window); 28 layers twice, 2 layers once.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c5.tgz -C /tmp r
