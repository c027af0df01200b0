#!/bin/bash
# Session 15, call 5: --persistent-gemv-bench with three cuts of the weight ring (48 x 4,224 bytes,
# 24 x 8,448, 12 x 16,896) and four modes each (full; no row math; no grid barriers; streaming only),
# 28 layers twice. Binary: e7780e2 + the uncommitted bench.
source .carry/hdr.sh
C=$B/pg/kr-cuda-bench
run pg28a 90 $C --persistent-gemv-bench --layers 28 --json $R/pg28a.json; cat $R/pg28a.txt >> $S
run pg28b 90 $C --persistent-gemv-bench --layers 28; cat $R/pg28b.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c5.tgz -C /tmp r
