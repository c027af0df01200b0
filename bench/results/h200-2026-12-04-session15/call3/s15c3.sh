#!/bin/bash
# Session 15, call 3: kr-cuda-bench --persistent-gemv-bench (the 4-bit GEMVs of a 3B batch-1 step as one
# persistent kernel vs one plain kernel a matrix; persistent_gemv_bench.h), 28 layers twice, 1 and 4
# layers, and 1 layer under compute-sanitizer. Binary: e7780e2 + the uncommitted bench (pg).
source .carry/hdr.sh
C=$B/pg/kr-cuda-bench
run pg28a 90 $C --persistent-gemv-bench --layers 28 --json $R/pg28a.json; cat $R/pg28a.txt >> $S
run pg28b 90 $C --persistent-gemv-bench --layers 28; cat $R/pg28b.txt >> $S
run pg1 60 $C --persistent-gemv-bench --layers 1; cat $R/pg1.txt >> $S
run pg4 60 $C --persistent-gemv-bench --layers 4; cat $R/pg4.txt >> $S
CS=$(ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
run san 120 $CS --tool memcheck $C --persistent-gemv-bench --layers 1; tail -5 $R/san.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c3.tgz -C /tmp r
