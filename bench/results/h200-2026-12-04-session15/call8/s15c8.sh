#!/bin/bash
# Session 15, call 8: --persistent-gemv-bench with two CTAs an SM (rings of 12 x 8,448 and 24 x 4,224
# bytes) against one (48 x 4,224, 24 x 8,448 by bulk copies and by cp.async), five modes each; 28
# layers twice. Binary: e7780e2 + the uncommitted bench.
source .carry/hdr.sh
C=$B/pg/kr-cuda-bench
run pg28a 90 $C --persistent-gemv-bench --layers 28 --json $R/pg28a.json; cat $R/pg28a.txt >> $S
run pg28b 90 $C --persistent-gemv-bench --layers 28; cat $R/pg28b.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c8.tgz -C /tmp r
