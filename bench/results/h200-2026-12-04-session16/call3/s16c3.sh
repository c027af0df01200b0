#!/bin/bash
# Session 16, call 3: kr-backend-ops on the flash decode changes (2-warp shape, PDL after every
# kernel with the older keys loaded before the wait): --quick with the policy's shape, with the
# 2-warp shape forced (bf16 and FP8 cache), --only fp8_act and --only short_decode; then the plant
# (every key loaded before the wait, the tile's own too: plant-prewait.diff), which must fail.
source .carry/hdr.sh
for v in new plant; do
  O2=$B/$v/kr-backend-ops
  run $v-q 120 $O2 --quick; tail -2 $R/$v-q.txt >> $S; grep -c FAIL $R/$v-q.txt >> $S
  run $v-q2 120 $O2 --quick --flash-decode-warps 2; tail -2 $R/$v-q2.txt >> $S; grep -c FAIL $R/$v-q2.txt >> $S
  run $v-q2f 120 $O2 --quick --kv-fp8 --flash-decode-warps 2; tail -2 $R/$v-q2f.txt >> $S; grep -c FAIL $R/$v-q2f.txt >> $S
  run $v-q4 120 $O2 --quick --flash-decode-warps 4; tail -2 $R/$v-q4.txt >> $S; grep -c FAIL $R/$v-q4.txt >> $S
  run $v-fa 150 $O2 --only fp8_act; tail -2 $R/$v-fa.txt >> $S; grep -c FAIL $R/$v-fa.txt >> $S
  echo "elapsed $(( $(date +%s) - START ))s" >> $S
done
grep FAIL $R/plant-*.txt | head -20 >> $S
gzip -f $R/*.txt
tar czf $O/c3.tgz -C /tmp r
