#!/bin/bash
# Prepared, not run (session 16's device time ran out): where the dense path (dequantize once a
# matrix, cuBLAS) overtakes the batched 4-bit kernel now that the dequantization reads each code
# vector once (75ba10a). 3B AWQ / MLX-4 decode at batch 80 / 96 / 128 / 192 (ctx 200) with
# CudaOptions::quant_dense_min_tokens at its default 256 (batched kernel below 256 rows) and at 65
# (dense from 65 rows); bf16
# beside them. Binary: kr-cuda-bench of the session's last commit.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
dl() { echo "$1 $(grep -E 'graph replay|decode batch [0-9]+ ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for q in awq mlx4; do
    run $q-256-$rep 60 $C --arch llama-3.2-3b --quant $q --decode-only --decode-at 80:200:32,96:200:32,128:200:32,192:200:16; dl $q-256-$rep
    run $q-65-$rep 60 $C --arch llama-3.2-3b --quant $q --decode-only --decode-at 80:200:32,96:200:32,128:200:32,192:200:16 --quant-dense-min 65; dl $q-65-$rep
  done
  run bf-$rep 60 $C --arch llama-3.2-3b --decode-only --decode-at 80:200:32,96:200:32,128:200:32,192:200:16; dl bf-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c1.tgz -C /tmp r
