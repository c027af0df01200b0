#!/bin/bash
# Session 7, call 3: same tree as call 2 + --fp8-gemm-split. Where the FP8 batch-64 step goes (nsys), the wgmma GEMM per shape with forced splits, ncu of its o/gate_up/down instances, batch 16 on wgmma.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
NS=$(which nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1); echo "nsys: $NS" >> $S
if [ -n "$NS" ]; then
  run nsys 120 $NS profile -o $R/step --force-overwrite true --capture-range=cudaProfilerApi --cuda-graph-trace=node -t cuda $C --arch llama-3.1-8b --quant fp8 --profile-decode 4 --profile-batch 64
  run nsst 60 $NS stats --report cuda_gpu_kern_sum --format csv -o $R/kern $R/step.nsys-rep
  ls $R >> $S
  head -25 $R/kern*.csv | cut -d, -f1-9 | cut -c1-220 >> $S
fi
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c3.tgz -C /tmp r
for sp in 1 2 4 8; do run gbs$sp 60 $C --fp8-gemm-bench --arch llama-3.1-8b --fp8-gemm-split $sp; done
for sp in 1 2 4 8; do echo "split $sp: $(grep -E 'fp8-wgmma' $R/gbs$sp.txt | awk '{print $5"/"$7"/"$9":"$10}' | tr '\n' ' ')" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c3.tgz -C /tmp r
for r in 1 2; do
  run b16wg$r 45 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64 --fp8-small-gemm 0
  run b16sm$r 45 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64
done
for f in b16wg1 b16sm1 b16wg2 b16sm2; do echo "$f $(grep -E 'batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c3.tgz -C /tmp r
run ncu 150 ncu --profile-from-start off --kernel-name regex:fp8_wgmma --launch-skip 1 --launch-count 3 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy --section SchedulerStats -o $R/wg -f $C --arch llama-3.1-8b --quant fp8 --profile-decode 1 --profile-batch 64
run ncud 30 ncu -i $R/wg.ncu-rep --page details
grep -E "fp8_wgmma_gemm_kernel<|Duration|DRAM Throughput|Memory Throughput|Eligible Warps|No Eligible|Warp Cycles Per Issued" $R/ncud.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c3.tgz -C /tmp r
