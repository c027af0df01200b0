#!/bin/bash
# Session 18, call 7: --mega-gemv-bench with the deterministic form of the linear kernel (no
# atomics on the sums: per-CTA slots added in order by the consumer, the residual in every CTA's
# registers); 28 layers twice, 2 layers once; plant/ (every CTA writes slot 0) must print WRONG.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run mega1 200 $C --mega-gemv-bench --layers 28 --json $O/mega1.json
run mega2 200 $C --mega-gemv-bench --layers 28 --json $O/mega2.json
run mega3 200 $C --mega-gemv-bench --layers 2 --json $O/mega3.json
run plant28 200 $B/plant/kr-cuda-bench --mega-gemv-bench --layers 28
for n in mega1 mega2 mega3; do cat $R/$n.txt >> $S; done
for n in plant28; do echo "$n: $(grep -E 'rel err|two runs' $R/$n.txt | tr '\n' ' ')" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c7.tgz -C /tmp r
