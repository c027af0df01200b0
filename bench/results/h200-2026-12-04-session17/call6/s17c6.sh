#!/bin/bash
# Session 17, call 6: the final tree. 8-bit integer codes dense from 65 rows
# (CudaOptions::quant8_dense_min_tokens) against kV2 (--quant8-dense-min 4096), 3B GPTQ-8; the
# session's numbers on one binary (3B AWQ / MLX-4 / GPTQ-8 / bf16 --brief with batch 80 and 128);
# kr-backend-ops --only quant_ops / quant_batched / quant_models and --quick.
# Binaries: the working tree (new/).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'replay|prefill pp512|decode batch [0-9]+ ' $R/$1.txt | grep -v 'ctx 4096\|ctx 32768' | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
AT=1:128:8,64:200:32,80:200:32,96:200:32,128:200:32
run g8-kv2 70 $C --arch llama-3.2-3b --quant gptq8 --decode-only --decode-at 64:200:32,80:200:32,128:200:32 --quant8-dense-min 4096; dl g8-kv2
for q in awq mlx4 gptq8; do run $q 90 $C --arch llama-3.2-3b --quant $q --brief --decode-at $AT; dl $q; done
run bf 90 $C --arch llama-3.2-3b --brief --decode-at $AT; dl bf
( run qo 250 stdbuf -oL $B/new/kr-backend-ops --only quant_ops ) &
( run qb 250 stdbuf -oL $B/new/kr-backend-ops --only quant_batched ) &
( run qm 250 stdbuf -oL $B/new/kr-backend-ops --only quant_models ) &
( run quick 250 stdbuf -oL $B/new/kr-backend-ops --quick ) &
wait
for n in qo qb qm quick; do echo "== $n: $(grep -c ' ok' $R/$n.txt) ok, $(grep -c FAIL $R/$n.txt) FAIL; last: $(tail -1 $R/$n.txt)" >> $S; done
grep FAIL $R/qo.txt $R/qb.txt $R/qm.txt $R/quick.txt | head -8 | cut -c1-220 >> $S
grep -c "dense" $R/qo.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c6.tgz -C /tmp r
