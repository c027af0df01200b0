#!/bin/bash
# Session 18, call 14: --mega-gemv-bench with a decode attention phase inside the lean kernel
# (ctx 128: RoPE, new K/V stored, 24 heads x 4 key splits on one warp each, merged in o_proj's
# staging); 28 layers twice, 2 layers once; plant/ (RoPE's sign flipped, call14/plant-rope.diff)
# must print WRONG.
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
tar czf $O/c14.tgz -C /tmp r
