#!/bin/bash
# Session 18, call 17: the committed bench after its last review (the norm and GLU staging in one
# helper each): --mega-gemv-bench at 28 layers twice and 2 layers once.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c17.tgz -C /tmp r
