#!/bin/bash
# Session 18, call 15: --mega-gemv-bench with the attention phase one key a lane (5 splits of 26
# keys, the RoPE table from the host, the loads of a row or of 8 keys in flight at once);
# 28 layers twice, 2 layers once; plant/ (RoPE's sign flipped, call15/plant-rope2.diff) must
# print WRONG.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
run plant28 200 $B/plant/kr-cuda-bench --mega-gemv-bench --layers 28
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
for n in plant28; do echo "$n: $(grep -E 'rel err' $R/$n.txt | tr '\n' ' ')" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c15.tgz -C /tmp r
