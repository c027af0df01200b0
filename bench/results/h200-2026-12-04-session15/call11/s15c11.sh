#!/bin/bash
# Session 15, call 11: --persistent-gemv-bench with the ring positions advanced by increments (no
# division a slot in the producer or the consumers), twice, and with the planted bug
# (../plant-no-barrier.diff), which must print DIFFERENT and exit 1.
# Binaries: fin = e7780e2 + the bench as committed; plant = fin + the diff.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run pga 90 $C --persistent-gemv-bench --layers 28 --json $R/pga.json; cat $R/pga.txt >> $S
run pgb 90 $C --persistent-gemv-bench --layers 28; cat $R/pgb.txt >> $S
run plant 90 $B/plant/kr-cuda-bench --persistent-gemv-bench --layers 28; cat $R/plant.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c11.tgz -C /tmp r
