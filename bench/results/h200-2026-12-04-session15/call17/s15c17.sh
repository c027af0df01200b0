#!/bin/bash
# Session 15, call 17: --persistent-gemv-bench with one more floor, the one-kernel read in the
# persistent kernels' shape (one CTA of 512 threads an SM), 28 layers once.
# Binary: f045b98 + that floor (as committed next).
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run pga 90 $C --persistent-gemv-bench --layers 28 --json $R/pga.json; cat $R/pga.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
# (as run, the next line named the build machine's source directory, which the binary's check
# messages then carried; it is not recorded here, and builds since name files relative to the tree)
sed -i 's|<build machine source dir>/||g' $R/*.txt $S
gzip -f $R/*.txt
tar czf $O/c17.tgz -C /tmp r
