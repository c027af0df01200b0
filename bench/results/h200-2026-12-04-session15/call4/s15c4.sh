#!/bin/bash
# Session 15, call 4: --persistent-gemv-bench with the row loop unrolled by 4 and its timing-only modes
# (no row math; no grid barriers), 28 layers twice and 4 layers. Binary: e7780e2 + the uncommitted bench.
source .carry/hdr.sh
C=$B/pg/kr-cuda-bench
run pg28a 90 $C --persistent-gemv-bench --layers 28 --json $R/pg28a.json; cat $R/pg28a.txt >> $S
run pg28b 90 $C --persistent-gemv-bench --layers 28; cat $R/pg28b.txt >> $S
run pg4 60 $C --persistent-gemv-bench --layers 4; cat $R/pg4.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c4.tgz -C /tmp r
