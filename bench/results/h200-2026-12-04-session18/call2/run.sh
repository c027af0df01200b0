#!/bin/bash
# Session 18, call 2: --mega-gemv-bench with staging in one round trip, the register-ring form,
# and the timing-only modes; 28 layers twice, then 2 layers (the reference error's growth).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c2.tgz -C /tmp r
