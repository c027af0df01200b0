#!/bin/bash
# Session 15, call 14: --persistent-gemv-bench with the second persistent form (rows streamed into
# registers, no ring; the first two rows of each matrix requested before the barrier), the row math
# read as 16-byte chunks a lane, x laid out for consecutive lanes; 28 layers twice, then with
# ../plant-no-barrier-both.diff (both persistent forms skip their barriers), which must print
# DIFFERENT and exit 1. Binaries: 52b34fb + that change (fin, as committed next); plant = fin + diff.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run pga 90 $C --persistent-gemv-bench --layers 28 --json $R/pga.json; cat $R/pga.txt >> $S
run pgb 90 $C --persistent-gemv-bench --layers 28; cat $R/pgb.txt >> $S
run plant 90 $B/plant/kr-cuda-bench --persistent-gemv-bench --layers 28; cat $R/plant.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c14.tgz -C /tmp r
