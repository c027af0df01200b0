#!/bin/bash
# Session 10, call 2: the 4-bit x bf16 GEMM of 9..64 rows on wgmma (QGemmPath::kWgmma, new) against
# the checks (kr-backend-ops --only quant_batched runs v1, v2 and wgmma) and a planted bug (a group
# that starts at a step's second 32-column chunk keeps the first chunk's meta: group-32 formats must
# FAIL on [qgemm-wgmma] lines only); per-matrix times (--qgemm-bench) and 3B decode, wgmma vs v2 vs bf16.
source .carry/hdr.sh
N=$B/new/kr-backend-ops; P=$B/bug/kr-backend-ops; C=$B/new/kr-cuda-bench
( run qb 150 stdbuf -oL $N --only quant_batched ) &
( run plant 150 stdbuf -oL $P --only quant_batched ) &
wait
for f in qb plant; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL ($(grep FAIL $R/$f.txt | grep -c 'qgemm-wgmma') wgmma); last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -6 | cut -c1-200 >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c2.tgz -C /tmp r
run qg 90 $C --qgemm-bench --quant awq --arch llama-3.2-3b
grep -E "T 16 |T 64 " $R/qg.txt | awk '{print $3,$4,$5,$6,$7,$8,$9,$10,$11}' >> $S
D="--brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64"
for r in 1 2; do
  run aw$r 50 $C --arch llama-3.2-3b --quant awq $D --qgemm-batched wgmma
  run av$r 50 $C --arch llama-3.2-3b --quant awq $D --qgemm-batched v2
done
run mw 50 $C --arch llama-3.2-3b --quant mlx4 $D --qgemm-batched wgmma
run mv 50 $C --arch llama-3.2-3b --quant mlx4 $D --qgemm-batched v2
run b3 50 $C --arch llama-3.2-3b $D
for f in aw1 av1 aw2 av2 mw mv b3; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/qb.txt $R/plant.txt
tar czf $O/c2.tgz -C /tmp r
