#!/bin/bash
# Session 19, call 9: the decode stack kernel after call 8: warp 0 of each CTA runs the attention items and
# streams no weights (its key loads wait for nothing else); the grid barrier on a 64-bit count that only
# grows (one red.release an arrival, no reset). kr-backend-ops --only decode_stack;
# 3B AWQ / MLX-4 batch 1 with and without it (alternated, contexts 128 / 1,024 / 4,000); the phase
# timing again (trace/: mk_trace3.py's instrumentation, not committed); the test against a planted bug.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
dl() { echo "$1 $(grep -E 'replay|decode batch [0-9]+ |rror|FAIL|failed' $R/$1.txt | head -5 | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ roofline (3.9 TB\/s)//; s/ GB\/step; [0-9]*% of the [0-9]* tok\/s//' | tr '\n' '|')" >> $S; }
A="--arch llama-3.2-3b --quant awq"
run ds 300 stdbuf -oL $B/new/kr-backend-ops --only decode_stack
echo "== ds: $(grep -c ' ok' $R/ds.txt) ok, $(grep -c FAIL $R/ds.txt) FAIL; last: $(tail -1 $R/ds.txt)" >> $S
grep -E "FAIL" $R/ds.txt | head -20 >> $S
for rep in 1 2; do
  run st-$rep 90 $C $A --brief --decode-only --decode-at 1:128:64,1:1024:64,1:4000:32 --decode-stack; dl st-$rep
  run base-$rep 90 $C $A --brief --decode-only --decode-at 1:128:64,1:1024:64,1:4000:32; dl base-$rep
done
run mlxst 90 $C --arch llama-3.2-3b --quant mlx4 --brief --decode-only --decode-at 1:128:64 --decode-stack; dl mlxst


run plant 300 stdbuf -oL $B/plant/kr-backend-ops --only decode_stack
echo "== plant (plant-merge.diff: the last split left out of the merge): $(grep -c ' ok' $R/plant.txt) ok, $(grep -c FAIL $R/plant.txt) FAIL; last: $(tail -1 $R/plant.txt)" >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c9.tgz -C /tmp r
