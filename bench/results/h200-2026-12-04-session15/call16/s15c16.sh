#!/bin/bash
# Session 15, call 16: --persistent-gemv-bench with a third persistent form (a cp.async ring a warp,
# 3 slots of 4,224 bytes, the first 3 slots of each matrix requested before the barrier), 28 layers
# twice, then with ../plant-no-barrier-all.diff (all three persistent forms skip their barriers),
# which must print DIFFERENT and exit 1. Binaries: fin = fac7202 + that form (as committed next);
# plant = fin + diff.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run pga 90 $C --persistent-gemv-bench --layers 28 --json $R/pga.json; cat $R/pga.txt >> $S
run pgb 90 $C --persistent-gemv-bench --layers 28; cat $R/pgb.txt >> $S
run plant 90 $B/plant/kr-cuda-bench --persistent-gemv-bench --layers 28; cat $R/plant.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
# (as run, the next line named the build machine's source directory, which the binary's check
# messages then carried; it is not recorded here, and builds since name files relative to the tree)
sed -i 's|<build machine source dir>/||g' $R/*.txt $S
gzip -f $R/*.txt
tar czf $O/c16.tgz -C /tmp r
