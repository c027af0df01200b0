#!/bin/bash
# Session 10, call 5: timing-only ablations of the wgmma 4-bit GEMM's per-step synchronisation (wrong
# results; patches beside this script): nofence (no fence.proxy.async), nowait (no cp.async.wait_group),
# nobar (no __syncthreads), none (none of the three); v0 = call 3's kernel. s2 = two weight steps a
# ring stage: checks (and a planted bug, plant-g32-s2.patch), per-matrix times, 3B decode wgmma vs v2 vs bf16;
# nat = s2 with x staged in column order by 16-byte copies and the A codes gathered by shuffles.
source .carry/hdr.sh
for v in v0 nofence nowait nobar none; do
  run qg-$v 40 $B/v/kr-cuda-bench.$v --qgemm-bench --quant awq --arch llama-3.2-3b
  echo "$v $(grep -E 'wgmma +T (16|64) ' $R/qg-$v.txt | awk '{print $5"/"$7":"$10}' | tr '\n' ' ')" >> $S
done
for v in s2 nat; do
  run qg-$v 40 $B/$v/kr-cuda-bench --qgemm-bench --quant awq --arch llama-3.2-3b
  echo "$v $(grep -E 'wgmma +T (16|64) ' $R/qg-$v.txt | awk '{print $5"/"$7":"$10}' | tr '\n' ' ')" >> $S
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c5.tgz -C /tmp r
( run qb 120 stdbuf -oL $B/s2/kr-backend-ops --only quant_batched ) &
( run plant 120 stdbuf -oL $B/s2bug/kr-backend-ops --only quant_batched ) &
( run qbn 120 stdbuf -oL $B/nat/kr-backend-ops --only quant_batched ) &
wait
for f in qb plant qbn; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -4 | cut -c1-200 >> $S; done
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
run aw 50 $B/s2/kr-cuda-bench --arch llama-3.2-3b --quant awq $D --qgemm-batched wgmma
run av 50 $B/s2/kr-cuda-bench --arch llama-3.2-3b --quant awq $D --qgemm-batched v2
run mw 50 $B/s2/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D --qgemm-batched wgmma
run mv 50 $B/s2/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D --qgemm-batched v2
run an 50 $B/nat/kr-cuda-bench --arch llama-3.2-3b --quant awq $D --qgemm-batched wgmma
run mn 50 $B/nat/kr-cuda-bench --arch llama-3.2-3b --quant mlx4 $D --qgemm-batched wgmma
run b3 50 $B/s2/kr-cuda-bench --arch llama-3.2-3b $D
for f in aw av mw mv an mn b3; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/qb.txt $R/plant.txt $R/qbn.txt
tar czf $O/c5.tgz -C /tmp r
