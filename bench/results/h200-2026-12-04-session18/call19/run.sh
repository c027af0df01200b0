#!/bin/bash
# Session 18, call 19 (review): launch_qgemm_wgmma plans only the pass kernels that run (the
# 64-token plan only when the last pass has at most 64 tokens). kr-backend-ops --only
# quant_batched and --only quant_models; 3B AWQ decode at batch 64 / 80 / 128.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'replay|decode batch [0-9]+ ' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
run awq 90 $C --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 64:200:32,80:200:32,128:200:32; dl awq
( run qb 250 stdbuf -oL $B/new/kr-backend-ops --only quant_batched ) &
( run qm 250 stdbuf -oL $B/new/kr-backend-ops --only quant_models ) &
wait
for n in qb qm; do echo "== $n: $(grep -c ' ok' $R/$n.txt) ok, $(grep -c FAIL $R/$n.txt) FAIL; last: $(tail -1 $R/$n.txt)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c19.tgz -C /tmp r
