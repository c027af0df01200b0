#!/bin/bash
# Session 18, call 13: planted bug for the aligned deterministic forms (plant/: the ordered CTA
# sum leaves out the last warp, call13/plant-lastwarp.diff): --mega-gemv-bench must print WRONG.
source .carry/hdr.sh
run plant28 200 $B/plant/kr-cuda-bench --mega-gemv-bench --layers 28
run plant2 200 $B/plant/kr-cuda-bench --mega-gemv-bench --layers 2
for n in plant28 plant2; do echo "$n: $(grep -E 'rel err|two runs' $R/$n.txt | tr '\n' ' ')" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c13.tgz -C /tmp r
