#!/bin/bash
# Session 15, call 12: --persistent-gemv-bench with the producer's stage held in registers and its
# source pointer advanced by addition (the asm memory clobbers had reloaded the stage's fields from
# global memory every slot), 28 layers twice. Binary: 0c4493d + that change.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run pga 90 $C --persistent-gemv-bench --layers 28 --json $R/pga.json; cat $R/pga.txt >> $S
run pgb 90 $C --persistent-gemv-bench --layers 28; cat $R/pgb.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c12.tgz -C /tmp r
