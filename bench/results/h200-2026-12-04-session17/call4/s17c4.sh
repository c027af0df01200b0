#!/bin/bash
# Session 17, call 4: the flash prefill kernel at short contexts. (a) --attn-bench, variants 0, 1
# (default) and 5 (w8-bc128), with prompts alone of 512-4,096 tokens; (b) pp512 end to end with
# --prefill-variant 1 vs 5 (3B bf16, 8B bf16, 8B FP8), twice; (c) Nsight Compute on the 3B pp512
# prefill kernel, variants 1 and 5. Binary: the working tree (new/).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
run attn 150 $C --attn-bench --variants 1,5 --rounds 5; grep -E "BEST|after 0 " $R/attn.txt | cut -c1-160 >> $S
pp() { echo "$1 $(grep -E 'prefill pp512' $R/$1.txt | tr -s ' ' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for m in "3b:--arch llama-3.2-3b" "8b:--arch llama-3.1-8b" "8bf8:--arch llama-3.1-8b --quant fp8"; do
    n=${m%%:*}; a=${m#*:}
    for v in 1 5; do run $n-v$v-$rep 90 $C $a --brief --decode-at 1:128:8 --prefill-variant $v; pp $n-v$v-$rep; done
  done
done
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" >> $S
for v in 1 5; do
  run ncu-v$v 120 $NCU --profile-from-start off --kernel-name regex:flash_prefill --launch-count 1 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats $C --arch llama-3.2-3b --profile-prefill 512 --prefill-variant $v
  grep -E "Duration|Registers|Shared Memory Config|Dynamic Shared|Achieved Occupancy|Theoretical Occupancy|Waves Per SM|Grid Size|Block Size|Warp Cycles Per Issued|Issued Warp|No Eligible|Compute \(SM\) Throughput|Memory Throughput|Stall" $R/ncu-v$v.txt | tr -s ' ' | head -30 >> $S
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c4.tgz -C /tmp r
