#!/bin/bash
# Session 15, call 10: the final --persistent-gemv-bench (valid ring cuts only, outputs zeroed before
# every run) twice, and with a planted bug (the full chain skips its grid barriers:
# ../plant-no-barrier.diff), which must print DIFFERENT and exit 1. Then issue 13's FP8 lines at this
# session's main (unchanged serving path): 8B FP8 and bf16, batch 1 / 64 and pp512, twice each.
# Binaries: fin = e7780e2 + the bench as committed next; plant = fin + the diff.
source .carry/hdr.sh
C=$B/fin/kr-cuda-bench
run pga 90 $C --persistent-gemv-bench --layers 28 --json $R/pga.json; cat $R/pga.txt >> $S
run pgb 90 $C --persistent-gemv-bench --layers 28; cat $R/pgb.txt >> $S
run plant 90 $B/plant/kr-cuda-bench --persistent-gemv-bench --layers 28; cat $R/plant.txt >> $S
echo "elapsed $(( $(date +%s) - START ))s" >> $S
dl() { echo "$1 $(grep -E 'DIFFERENT|graph replay|decode batch (1|64) |prefill pp512' $R/$1.txt | tr -s ' ' | sed 's/graph replay check (5 seqs x 12 steps, ids and logprobs)/replay/; s/decode batch/b/; s/ ctx [0-9]*//; s/ roofline (3.9 TB\/s)//; s/without.*/no-argmax/' | tr '\n' '|')" >> $S; }
for rep in 1 2; do
  run f-$rep 60 $C --arch llama-3.1-8b --quant fp8 --brief --decode-at 64:200:64; dl f-$rep
  run g-$rep 60 $C --arch llama-3.1-8b --brief --decode-at 64:200:64; dl g-$rep
done
echo "elapsed $(( $(date +%s) - START ))s" >> $S
gzip -f $R/*.txt
tar czf $O/c10.tgz -C /tmp r
