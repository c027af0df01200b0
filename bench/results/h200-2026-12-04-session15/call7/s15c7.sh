#!/bin/bash
# Session 15, call 7: --persistent-gemv-bench, the ring filled by bulk copies (48 x 4,224, 24 x 8,448,
# 12 x 16,896 bytes) or by the producer warp's 32 lanes with cp.async (48 x 4,224, 24 x 8,448), five
# modes each; 28 layers twice. Binary: e7780e2 + the uncommitted bench.
source .carry/hdr.sh
C=$B/pg/kr-cuda-bench
run pg28a 90 $C --persistent-gemv-bench --layers 28 --json $R/pg28a.json; cat $R/pg28a.txt >> $S
run pg28b 90 $C --persistent-gemv-bench --layers 28; cat $R/pg28b.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt
tar czf $O/c7.tgz -C /tmp r
