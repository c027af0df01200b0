#!/bin/bash
# Session 8, call 2: wgmma GEMM with hoisted copy addresses, incremental descriptors and one wgmma group in
# flight (8-stage ring) vs 18567b0 (old); q4-cluster-fit (batched 4-bit K split from cluster occupancy) vs main.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench; N=$B/new/kr-backend-ops; C0=$B/old/kr-cuda-bench; Q=$B/q4/kr-cuda-bench; QN=$B/q4/kr-backend-ops
( run ops-wg 75 stdbuf -oL $N --only fp8_wgmma ) &
( run ops-qb 75 stdbuf -oL $QN --only quant_batched ) &
wait
for f in ops-wg ops-qb; do echo "== $f: $(grep -c ' ok$' $R/$f.txt) ok, $(grep -c FAIL $R/$f.txt) FAIL; last: $(tail -1 $R/$f.txt | cut -c1-150)" >> $S; grep FAIL $R/$f.txt | head -5 | cut -c1-200 >> $S; done
run gbn 45 $C --fp8-gemm-bench --arch llama-3.1-8b
run gbo 45 $C0 --fp8-gemm-bench --arch llama-3.1-8b
for f in gbn gbo; do echo "$f"; grep -E "wgmma" $R/$f.txt | awk '{print $2,$3,$4,$5,$7,$9,$10,$11,$12,$13,$14,$15,$16}'; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c2.tgz -C /tmp r
for r in 1 2; do
  run f8n$r 50 $C --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64
  run f8o$r 50 $C0 --arch llama-3.1-8b --quant fp8 --brief --decode-only --decode-at 16:200:64,32:200:64,64:200:64
done
run bf 45 $C --arch llama-3.1-8b --brief --decode-only --decode-at 64:200:64
for f in f8n1 f8o1 f8n2 f8o2 bf; do echo "$f $(grep -E 'batch 64 |batch 32 |batch 16 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | sed 's/ roofline (3.9 TB\/s)//' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
tar czf $O/c2.tgz -C /tmp r
run qgn 40 $C --qgemm-bench --quant awq --arch llama-3.2-3b
run qgq 40 $Q --qgemm-bench --quant awq --arch llama-3.2-3b
run awn 40 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 64:200:64
run awq 40 $Q --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 64:200:64
for f in awn awq; do echo "$f $(grep -E 'batch 64 |DIFFERENT|graph replay' $R/$f.txt | tr -s ' ' | tr '\n' '|')"; done >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip $R/ops-*.txt
tar czf $O/c2.tgz -C /tmp r
