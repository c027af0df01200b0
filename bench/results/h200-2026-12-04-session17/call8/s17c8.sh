#!/bin/bash
# Session 17, call 8: after the review's mend (launch_qgemm_wgmma builds every pass's arguments
# through token_rows, the single pass too): kr-backend-ops --only quant_batched and --only
# quant_models, 3B AWQ decode at batch 64-128 and pp512. Binaries: the working tree (new/).
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'replay|prefill pp512|decode batch [0-9]+ ' $R/$1.txt | grep -v 'ctx 4096\|ctx 32768' | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
run awq 90 $C --arch llama-3.2-3b --quant awq --brief --decode-at 64:200:32,80:200:32,128:200:32; dl awq
( run qb 250 stdbuf -oL $B/new/kr-backend-ops --only quant_batched ) &
( run qm 250 stdbuf -oL $B/new/kr-backend-ops --only quant_models ) &
wait
for n in qb qm; do echo "== $n: $(grep -c ' ok' $R/$n.txt) ok, $(grep -c FAIL $R/$n.txt) FAIL; last: $(tail -1 $R/$n.txt)" >> $S; done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c8.tgz -C /tmp r
