#!/bin/bash
# Session 15, call 13: --persistent-gemv-bench with its two bytes-only floors (every matrix's weights
# read by one plain kernel a matrix, and by one kernel for the whole step), 28 layers twice.
# Binary: 65ea8db + those floors (the bench as committed next).
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run pga 90 $C --persistent-gemv-bench --layers 28 --json $R/pga.json; cat $R/pga.txt >> $S
run pgb 90 $C --persistent-gemv-bench --layers 28; cat $R/pgb.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c13.tgz -C /tmp r
