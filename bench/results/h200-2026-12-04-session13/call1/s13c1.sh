#!/bin/bash
# Session 13, call 1: per-CTA phase timestamps of the wgmma 4-bit GEMM (trace build, 3B AWQ
# shapes, --qgemm-bench), and Nsight Compute's per-instruction stall samples for qkv at 64 tokens.
source .carry/hdr.sh
C=$B/tr/kr-cuda-bench
run qg 90 $C --qgemm-bench --quant awq --arch llama-3.2-3b
grep -E "(wgmma|bf16) +T (16|32|64) |trace" $R/qg.txt | cut -c1-330 >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run nq 200 ncu --clock-control none --kernel-name regex:qgemm_wgmma_kernel --launch-skip 1000 --launch-count 1 --set full --import-source no -o $R/nq -f $C --qgemm-bench --quant awq --arch llama-3.2-3b
ncu -i $R/nq.ncu-rep --page details > $R/nq-details.txt 2>&1
ncu -i $R/nq.ncu-rep --page raw --csv > $R/nq-raw.csv 2>&1
ncu -i $R/nq.ncu-rep --page source --csv --print-source sass > $R/nq-sass.csv 2> $R/nq-sass.err
echo "sass csv lines $(wc -l < $R/nq-sass.csv); err: $(head -c 300 $R/nq-sass.err)" >> $S
grep -E "Duration|Registers Per|Grid Size|Cluster Size|Executed Ipc A|Issue Slots Busy|Warp Cycles Per Issued" $R/nq-details.txt | head -12 >> $S
cuobjdump -sass $C 2>/dev/null | awk '/Function : .*qgemm_wgmma/{p=1} /Function : /{if($0 !~ /qgemm_wgmma/)p=0} p' > $R/wg-sass.txt
echo "wg sass lines $(wc -l < $R/wg-sass.txt)" >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
rm -f $R/nq.ncu-rep; gzip $R/*.txt $R/*.csv
tar czf $O/c1.tgz -C /tmp r
