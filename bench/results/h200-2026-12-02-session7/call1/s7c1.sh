#!/bin/bash
# Session 7, call 1: 663a096. Where the batched 4-bit kernel (v2) spends its time at 64 tokens: ncu full set + SASS source counters.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
which ncu cuobjdump nvdisasm >> $S 2>&1
run prof 200 ncu --profile-from-start off --kernel-name regex:qgemm_batched --launch-count 8 --set full --import-source no -o $R/v2 -f $C --arch llama-3.2-3b --quant awq --profile-decode 1 --profile-batch 64
run det 60 ncu -i $R/v2.ncu-rep --page details
run src 60 ncu -i $R/v2.ncu-rep --page source --print-source sass --csv
echo "elapsed $(( $(date +%s) - START ))s" >> $S
grep -E "Duration|Memory Throughput|Compute \(SM\)|Registers|Achieved Occupancy|Block Limit|Cluster|One or More|Stall" $R/det.txt | head -60 >> $S
head -c 300000 $R/src.txt | gzip > $O/src-head.csv.gz
gzip -c $R/src.txt > $O/src.csv.gz; gzip -c $R/det.txt > $O/det.txt.gz
cuobjdump -sass $C 2>/dev/null | awk "/Function : .*qgemm_batched_kernelILNS0_5QCodeE0ELb0ELi8/{p=1} /Function : / && !/qgemm_batched_kernelILNS0_5QCodeE0ELb0ELi8/{p=0} p" | gzip > $O/sass.txt.gz
echo "elapsed $(( $(date +%s) - START ))s" >> $S
