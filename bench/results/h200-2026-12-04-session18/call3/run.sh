#!/bin/bash
# Session 18, call 3: --mega-gemv-bench with o_proj / down_proj waiting only for the CTAs that
# produced their rows (group-major units, per-CTA flags) against grid barriers, and the rings'
# rate with no boundaries; 28 layers twice, 2 layers once; a planted bug (the sums not reset
# between tile pairs, plant/) at 2 and 28 layers must print WRONG.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
run plant2 200 $B/plant/kr-cuda-bench --mega-gemv-bench --layers 2
run plant28 200 $B/plant/kr-cuda-bench --mega-gemv-bench --layers 28
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
for n in plant2 plant28; do echo "$n: $(grep 'rel err' $R/$n.txt)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c3.tgz -C /tmp r
