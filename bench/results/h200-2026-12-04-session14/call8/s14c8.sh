#!/bin/bash
# Session 14, call 8: one kernel boundary inside a replayed graph (kr-cuda-bench --launch-bench), twice;
# 3B AWQ batch 1 on the same binary. Binary: 736929a + the launch bench (committed right after).
source .carry/hdr.sh
C=$B/lb/kr-cuda-bench
for rep in 1 2; do run lb$rep 60 $C --launch-bench --json $R/lb$rep.json; grep "launch chain" $R/lb$rep.txt >> $S; done
run a1 40 $C --arch llama-3.2-3b --quant awq --brief --decode-only
grep -E "decode batch 1 |graph replay" $R/a1.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c8.tgz -C /tmp r
