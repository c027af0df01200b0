#!/bin/bash
# Session 15, call 9: --persistent-gemv-bench with two CTAs an SM (rings of 11 x 8,448 and 22 x 4,224 by bulk copies, 11 x 8,448 by cp.async;
# call 8 asked 12 and 24 slots, which did not fit) against one (48 x 4,224, 24 x 8,448), five modes each; 28
# layers twice. Binary: e7780e2 + the uncommitted bench.
source .carry/hdr.sh
C=$B/pg/kr-cuda-bench
run pg28a 90 $C --persistent-gemv-bench --layers 28 --json $R/pg28a.json; cat $R/pg28a.txt >> $S
run pg28b 90 $C --persistent-gemv-bench --layers 28; cat $R/pg28b.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c9.tgz -C /tmp r
