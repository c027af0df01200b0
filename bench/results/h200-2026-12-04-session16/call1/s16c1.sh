#!/bin/bash
# Session 16, call 1: the flash decode kernel's 2-warp block shape (FlashAttnArgs::decode_warps).
# kr-attention-check: every decode case on both shapes against float64, then the timing sweep
# (forced 4 / 2 / the policy's). plant: the 2-warp shape drops warp 1's partial (must FAIL).
# End to end: 8B FP8 / bf16 and 3B AWQ at batch 64 (and 128), --flash-decode-warps 4 vs 0 (policy).
# kr-backend-ops --quick with the 2-warp shape forced, bf16 and FP8 KV.
source .carry/hdr.sh
C=$B/new/kr-cuda-bench
run ac 120 $B/new/kr-attention-check --out $R/ac.json; grep -E "FAIL|checks:|decode b|block shapes" $R/ac.txt >> $S
run plant 120 $B/plant/kr-attention-check --no-timing; grep -c FAIL $R/plant.txt >> $S; grep -E "checks:" $R/plant.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
dl() { echo "$1 $(grep -E 'graph replay|decode batch (1|64|128) |prefill pp512' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/ roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  for w in 4 0; do
    run f$w-$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-at 64:200:64,128:200:32 --flash-decode-warps $w; dl f$w-$rep
    run g$w-$rep 60 $C --arch llama-3.1-8b --brief --decode-at 64:200:64,128:200:32 --flash-decode-warps $w; dl g$w-$rep
  done
done
for w in 4 0; do
  run a$w 60 $C --arch llama-3.2-3b --quant awq --brief --decode-at 64:200:64 --flash-decode-warps $w; dl a$w
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
#run ops2 240 $B/new/kr-backend-ops --quick --flash-decode-warps 2; tail -3 $R/ops2.txt >> $S
#run ops2f 240 $B/new/kr-backend-ops --quick --kv-fp8 --flash-decode-warps 2; tail -3 $R/ops2f.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c1.tgz -C /tmp r
