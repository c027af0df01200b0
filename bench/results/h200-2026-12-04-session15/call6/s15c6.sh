#!/bin/bash
# Session 15, call 6: --persistent-gemv-bench with five ring configurations (slots x bytes x producer lanes: 48 x 4,224 x 1 and 4,
# 24 x 8,448 x 1 and 4, 12 x 16,896 x 1) and five modes (full; no row math; no grid barriers; streaming
# only; ring only: no x loads either),
# 28 layers twice. Binary: e7780e2 + the uncommitted bench.
source .carry/hdr.sh
C=$B/pg/kr-cuda-bench
run pg28a 90 $C --persistent-gemv-bench --layers 28 --json $R/pg28a.json; cat $R/pg28a.txt >> $S
run pg28b 90 $C --persistent-gemv-bench --layers 28; cat $R/pg28b.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c6.tgz -C /tmp r
