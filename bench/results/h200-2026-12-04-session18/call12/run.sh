#!/bin/bash
# Session 18, call 12: the committed bench after its review (one staging function for both
# deterministic forms, the cooperative launch shared with --persistent-gemv-bench):
# --mega-gemv-bench at 28 layers twice and 2 layers once, --persistent-gemv-bench once.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
run pers 200 $C --persistent-gemv-bench --layers 28
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
echo "pers: $(grep -ci 'equal' $R/pers.txt) lines with equal; $(tail -2 $R/pers.txt | tr '\n' ' ')" >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c12.tgz -C /tmp r
