#!/bin/bash
# Session 8, call 1 (18567b0): per-kernel durations of one decode step (ncu, clocks not locked):
# 8B FP8 batch 64 and 3B AWQ batch 1; Nsight Compute full set of the four wgmma GEMMs of layer 1;
# a planted bug in the wgmma GEMM's cluster sum (last rank dropped) against --only fp8_wgmma.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; P=$B/plant/kr-backend-ops
M=gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size
run plant 60 stdbuf -oL $P --only fp8_wgmma
echo "== plant: $(grep -c ' ok$' $R/plant.txt) ok, $(grep -c FAIL $R/plant.txt) FAIL" >> $S; grep FAIL $R/plant.txt | head -3 | cut -c1-200 >> $S
run t8 140 ncu --profile-from-start off --clock-control none --metrics $M --csv $C --arch llama-3.1-8b --quant fp8 --profile-decode 1 --profile-batch 64
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run t3 120 ncu --profile-from-start off --clock-control none --metrics $M --csv $C --arch llama-3.2-3b --quant awq --profile-decode 1 --profile-batch 1
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c1.tgz -C /tmp r
run wg 140 ncu --profile-from-start off --clock-control none --kernel-name regex:fp8_wgmma --launch-skip 4 --launch-count 4 --set full -o $R/wg -f $C --arch llama-3.1-8b --quant fp8 --profile-decode 1 --profile-batch 64
run wgd 40 ncu -i $R/wg.ncu-rep --page details
grep -E "Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Registers Per|Achieved Occupancy|Cluster Size|Max Active Clusters|Grid Size|Waves Per SM" $R/wgd.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S

gzip $R/*.txt
tar czf $O/c1.tgz -C /tmp r
