#!/bin/bash
# Session 11, call 2: 275eafb (`new`: no runtime division by the group size in the quantized GEMMs'
# step loops) against 5baec9a (`fin`); `pl` = new + plant2.patch (wgmma: a slice that starts inside
# a group counts a whole group; kV2: the group index of 64-column groups halved).
source .carry/hdr.sh
N=$B/new/kr-backend-ops
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run plant 150 stdbuf -oL $B/pl/kr-backend-ops --only quant_batched ) &
( run quick 100 stdbuf -oL $N --quick; run qm 40 stdbuf -oL $N --only quant_models; run gv 100 stdbuf -oL $N --only quant_gemv ) &
wait
for f in qb plant quick qm gv; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma, $(grep FAIL $R/$f.txt | grep -c 'v2') v2); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | grep wgmma | head -2 | cut -c1-200 >> $S; grep FAIL $R/$f.txt | grep -v wgmma | head -2 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
qgline() { echo "qg-$1 $(grep -E ' T (16 |32 |64 )' $R/qg-$1.txt | grep -E 'wgmma|v2 |bf16' | awk '{print $3":"$5":"$7"x"$9":"$10}' | tr '\n' ' ')" >> $S; }
for v in fin new; do run qg-$v 60 $B/$v/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b; qgline $v; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
dl() { echo "$1 $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay|decode batch 1 ' $R/$1.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | cut -c1-52 | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for v in fin new; do
    run a$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant awq $D; dl a$v$rep
    run m$v$rep 40 $B/$v/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D; dl m$v$rep
  done
done
run b3 40 $B/new/kr-cuda-bench --arch llama-3.2-3b $D; dl b3
for rep in 1 2 3; do
  run f$rep 60 $B/new/kr-cuda-bench --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 64:200:64; dl f$rep
  run b$rep 60 $B/new/kr-cuda-bench --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64; dl b$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
run nq 120 ncu --clock-control none --kernel-name regex:qgemm_wgmma_kernel --launch-skip 2 --launch-count 1 --set full --import-source no -o $R/nq -f $B/new/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b
ncu -i $R/nq.ncu-rep --page details > $R/nq-details.txt 2>&1
ncu -i $R/nq.ncu-rep --page raw --csv > $R/nq-raw.csv 2>&1
grep -E "qgemm_wgmma|Duration|DRAM Throughput|Issue Slots Busy|Warp Cycles Per Issued|No Eligible|Executed Instructions  |Grid Size|Cluster Size" $R/nq-details.txt | head -20 >> $S
python3 .carry/stalls.py $R/nq-raw.csv >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/*.txt $R/nq-raw.csv; rm -f $R/*.ncu-rep
tar czf $O/c2.tgz -C /tmp r
